// Administration: dashboard users (add with a role, change the role, delete; your own
// password through #/password) and API keys (create: the secret is shown once; enable,
// disable, delete). API: /api/v5/users and /api/v5/api_key (docs/api.md).
import { page, api, h, field, select, table, showError, toast, session } from "../app.js";

const ROLES = [["administrator", "administrator"], ["viewer", "viewer"]];

function isAdmin() {
  return (session.user || {}).role === "administrator";
}

/** RFC 3339 (UTC, whole seconds) from a datetime-local value; "infinity" when empty. */
function expiry(value) {
  if (!value) return "infinity";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new Error(`Not a date: ${value}`);
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function when(s) {
  if (!s || s === "infinity") return "never";
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

async function render(main) {
  const admin = isAdmin();
  const me = (session.user || {}).username;
  const users = h("section", { "aria-labelledby": "users-title" });
  const keys = h("section", { "aria-labelledby": "keys-title" });
  main.append(h("h1", {}, "Administration"));
  if (!admin) {
    main.append(h("p", { class: "notice" },
      "You are a viewer: you can read users and API keys; only an administrator can change them."));
  }
  main.append(users, keys);
  await Promise.all([renderUsers(users, admin, me), renderKeys(keys, admin)]);
}

// ---- users ----

async function renderUsers(box, admin, me) {
  const msg = h("div", {});
  const list = h("div", {}, h("p", { class: "loading" }, "Loading users…"));
  box.replaceChildren(
    h("h2", { id: "users-title" }, "Users"),
    h("p", {}, h("a", { href: "#/password" }, "Change your own password")),
    msg, list);
  if (admin) box.append(addUserForm(msg, () => load()));

  async function load() {
    let rows;
    try {
      rows = await api("GET", "/api/v5/users");
    } catch (e) {
      showError(list, e);
      return;
    }
    const cols = [
      ["Username", (u) => h("span", {}, u.username, u.username === me ? " (you)" : "")],
      ["Role", (u) => u.role],
      ["Description", (u) => u.description || ""],
      ["Password", (u) => (u.password_change_required ? "default: must be changed" : "set")],
    ];
    if (admin) cols.push(["Actions", (u) => userActions(u, me, msg, load)]);
    list.replaceChildren(table(cols, rows, "No users."));
  }
  await load();
}

function userActions(u, me, msg, reload) {
  const other = u.role === "administrator" ? "viewer" : "administrator";
  const run = async (what, f) => {
    msg.replaceChildren();
    try {
      await f();
      toast(what);
      await reload();
    } catch (e) {
      showError(msg, e);
    }
  };
  if (u.username === me) return h("a", { href: "#/password" }, "Change password");
  return h("span", { class: "cell-actions" },
    h("button", {
      "aria-label": `Make ${u.username} ${other === "viewer" ? "a viewer" : "an administrator"}`,
      onclick: () => run(`${u.username} is now ${other === "viewer" ? "a viewer" : "an administrator"}.`,
        () => api("PUT", `/api/v5/users/${encodeURIComponent(u.username)}`, { role: other })),
    }, other === "viewer" ? "Make viewer" : "Make administrator"),
    h("button", {
      class: "danger",
      "aria-label": `Delete user ${u.username}`,
      onclick: () => {
        if (!confirm(`Delete the user ${u.username}?`)) return;
        run(`User ${u.username} deleted.`,
          () => api("DELETE", `/api/v5/users/${encodeURIComponent(u.username)}`));
      },
    }, "Delete"));
}

function addUserForm(msg, reload) {
  const name = field("Username", { autocomplete: "off", required: true });
  const pass = field("Password", { type: "password", autocomplete: "new-password", required: true });
  const role = field("Role", {}, select(ROLES, "viewer"));
  const desc = field("Description", { autocomplete: "off" });
  const form = h("form", { class: "card", "aria-labelledby": "add-user-title" },
    h("h3", { id: "add-user-title" }, "Add a user"),
    h("div", { class: "row" }, name.row, pass.row, role.row, desc.row),
    h("p", { class: "hint" }, "Passwords: 8 to 64 characters, with at least two of: letters, digits, symbols."),
    h("button", { type: "submit", class: "primary" }, "Add user"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.replaceChildren();
    try {
      await api("POST", "/api/v5/users", {
        username: name.input.value.trim(), password: pass.input.value,
        role: role.input.value, description: desc.input.value,
      });
      toast(`User ${name.input.value.trim()} added.`);
      form.reset();
      await reload();
    } catch (e) {
      showError(msg, e);
    }
  });
  return form;
}

// ---- API keys ----

async function renderKeys(box, admin) {
  const msg = h("div", {});
  const secret = h("div", {});
  const list = h("div", {}, h("p", { class: "loading" }, "Loading API keys…"));
  box.replaceChildren(
    h("h2", { id: "keys-title" }, "API keys"),
    h("p", { class: "hint" },
      "Scripts call the API with HTTP Basic authentication: the key as user name, the secret as password."),
    secret, msg, list);
  if (admin) box.append(addKeyForm(msg, secret, () => load()));

  async function load() {
    let rows;
    try {
      rows = await api("GET", "/api/v5/api_key");
    } catch (e) {
      showError(list, e);
      return;
    }
    const cols = [
      ["Name", (k) => k.name],
      ["Key", (k) => h("code", {}, k.api_key)],
      ["Description", (k) => k.desc || ""],
      ["Role", (k) => k.role],
      ["Expires", (k) => when(k.expired_at)],
      ["Status", (k) => keyStatus(k)],
    ];
    if (admin) cols.push(["Actions", (k) => keyActions(k, msg, load)]);
    list.replaceChildren(table(cols, rows, "No API keys yet."));
  }
  await load();
}

function keyStatus(k) {
  const word = k.expired ? "expired" : k.enable ? "enabled" : "disabled";
  return h("span", { class: `status st-${k.expired || !k.enable ? "stopped" : "connected"}` }, word);
}

function keyActions(k, msg, reload) {
  const path = `/api/v5/api_key/${encodeURIComponent(k.name)}`;
  const run = async (what, f) => {
    msg.replaceChildren();
    try {
      await f();
      toast(what);
      await reload();
    } catch (e) {
      showError(msg, e);
    }
  };
  if (k.source && k.source !== "api") {
    return h("span", { class: "hint" }, `from ${k.source === "bootstrap_file" ? "the bootstrap file" : k.source}`);
  }
  return h("span", { class: "cell-actions" },
    h("button", {
      "aria-label": `${k.enable ? "Disable" : "Enable"} API key ${k.name}`,
      onclick: () => run(`API key ${k.name} ${k.enable ? "disabled" : "enabled"}.`,
        () => api("PUT", path, { enable: !k.enable })),
    }, k.enable ? "Disable" : "Enable"),
    h("button", {
      class: "danger",
      "aria-label": `Delete API key ${k.name}`,
      onclick: () => {
        if (!confirm(`Delete the API key ${k.name}? Scripts using it stop working.`)) return;
        run(`API key ${k.name} deleted.`, () => api("DELETE", path));
      },
    }, "Delete"));
}

function addKeyForm(msg, secretBox, reload) {
  const name = field("Key name", { autocomplete: "off", required: true });
  const desc = field("Key description", { autocomplete: "off" });
  const exp = field("Expires (empty: never)", { type: "datetime-local" });
  const role = field("Key role", {}, select(ROLES, "administrator"));
  const form = h("form", { class: "card", "aria-labelledby": "add-key-title" },
    h("h3", { id: "add-key-title" }, "Create an API key"),
    h("div", { class: "row" }, name.row, desc.row, exp.row, role.row),
    h("button", { type: "submit", class: "primary" }, "Create API key"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.replaceChildren();
    secretBox.replaceChildren();
    try {
      const r = await api("POST", "/api/v5/api_key", {
        name: name.input.value.trim(), desc: desc.input.value,
        expired_at: expiry(exp.input.value), role: role.input.value,
      });
      form.reset();
      showSecret(secretBox, r);
      await reload();
    } catch (e) {
      showError(msg, e);
    }
  });
  return form;
}

function showSecret(box, r) {
  const done = h("button", { type: "button", onclick: () => box.replaceChildren() }, "I have copied the secret");
  box.replaceChildren(h("div", { class: "ok-box secret-once", role: "status" },
    h("p", {}, h("strong", {}, `API key ${r.name} created. `),
      "Copy the secret now: it is shown only this once and cannot be read again."),
    h("dl", { class: "facts" },
      h("div", {}, h("dt", {}, "API key"), h("dd", {}, h("code", { class: "api-key" }, r.api_key))),
      h("div", {}, h("dt", {}, "Secret"), h("dd", {}, h("code", { class: "api-secret" }, r.api_secret)))),
    h("div", { class: "actions" }, done)));
  done.focus();
}

page("admin", "Administration", render, { nav: "Admin" });
