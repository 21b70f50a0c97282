// Ferry dashboard shell: the API client, the router, the layout and small UI helpers.
// Plain ES modules, no build step, no third-party code. Pages live in pages/*.js and register
// themselves with `page(...)`; they talk to Ferry only through the public HTTP API (`api`).
//
// Conventions every page follows (the browser tests rely on them):
// - a page renders one <h1> with its title;
// - every input has a <label> (use `field`), every action is a <button> with visible text;
// - lists are <table>s with <th> headers (use `table`);
// - statuses are shown as text (e.g. "connected"), colour only repeats it (class `st-...`).

const TOKEN = "ferry.token";
const USER = "ferry.user";

export const session = {
  get token() { return sessionStorage.getItem(TOKEN); },
  get user() {
    try { return JSON.parse(sessionStorage.getItem(USER) || "null"); } catch { return null; }
  },
  set(token, user) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(USER, JSON.stringify(user));
  },
  clear() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(USER);
  },
};

/** An API error: HTTP status plus EMQX's {code, message} (and `problems` for validation). */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || "";
    this.problems = (body && body.problems) || [];
  }
}

/**
 * Calls the API with the session's token. 401 ends the session and returns to the login
 * page with a message; 403 PASSWORD_CHANGE_REQUIRED goes to the password change.
 */
export async function api(method, path, body) {
  const headers = {};
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { code: "NETWORK", message: `Ferry did not answer (${e.message})` });
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (res.ok) return data;
  const err = new ApiError(res.status, typeof data === "object" ? data : { message: text });
  if (res.status === 401 && path !== "/api/v5/login") {
    session.clear();
    go("login", { reason: "Your session has ended: please log in again." });
  } else if (err.code === "PASSWORD_CHANGE_REQUIRED") {
    go("password");
  }
  throw err;
}

/** Builds an element: h("div", {class: "x", onclick: f}, "text", child, [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let fieldSeq = 0;

/** A labelled input (or select/textarea when `control` is given). Returns {row, input}. */
export function field(label, attrs = {}, control) {
  const id = attrs.id || `f${++fieldSeq}`;
  const input = control || h("input", { type: "text", ...attrs, id });
  if (control) control.id = id;
  return { row: h("div", { class: "field" }, h("label", { for: id }, label), input), input };
}

/** A <select> of [value, text] pairs. */
export function select(options, selected) {
  return h("select", {}, options.map(([v, t]) => h("option", { value: v, selected: v === selected }, t)));
}

/** A table: columns are [header, (row) => cell]. */
export function table(columns, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, columns.map(([t]) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, columns.map(([, f]) => h("td", {}, f(r))))))));
}

/** Previous/next paging over EMQX's meta {page, limit, count, hasnext}. */
export function pager(meta, onPage) {
  if (!meta) return null;
  const pages = Math.max(1, Math.ceil(meta.count / meta.limit));
  return h("nav", { class: "pager", "aria-label": "pages" },
    h("button", { disabled: meta.page <= 1, onclick: () => onPage(meta.page - 1) }, "Previous"),
    h("span", {}, `Page ${meta.page} of ${pages} (${meta.count} in all)`),
    h("button", { disabled: !meta.hasnext, onclick: () => onPage(meta.page + 1) }, "Next"));
}

/** A status as text with a colour class: connected / connecting / disconnected / stopped. */
export function status(s, reason) {
  const word = s || "unknown";
  return h("span", { class: `status st-${word}`, title: reason || "" },
    word, reason && word !== "connected" ? ` (${reason})` : "");
}

/** A message for the user: errors stay until dismissed, others fade. */
export function toast(msg, kind = "info") {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div", { id: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const t = h("div", { class: `toast ${kind}` }, h("span", {}, msg),
    h("button", { class: "link", "aria-label": "dismiss", onclick: () => t.remove() }, "×"));
  box.append(t);
  if (kind !== "error") setTimeout(() => t.remove(), 4000);
}

/** Shows an API error inside `where` (validation problems as a list). */
export function showError(where, e) {
  where.replaceChildren(h("div", { class: "error", role: "alert" },
    h("strong", {}, e.message),
    e.problems && e.problems.length > 1 ? h("ul", {}, e.problems.map((p) => h("li", {}, p))) : null));
}

export const fmt = {
  num(n) { return n === undefined || n === null ? "–" : Number(n).toLocaleString("en-US"); },
  rate(n) { return n === undefined || n === null ? "–" : `${Number(n).toFixed(Number(n) < 10 ? 2 : 0)}/s`; },
  us(n) {
    if (n === undefined || n === null) return "–";
    if (n < 1000) return `${n} µs`;
    if (n < 1e6) return `${(n / 1000).toFixed(1)} ms`;
    return `${(n / 1e6).toFixed(2)} s`;
  },
  uptime(ms) {
    const s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return d ? `${d}d ${hh}h ${m}m` : hh ? `${hh}h ${m}m` : `${m}m ${s % 60}s`;
  },
  json(v) { return JSON.stringify(v, null, 2); },
};

// ---- router ----

const pages = new Map();
const nav = [];
let timers = [];

/**
 * Registers a page at `#/name`. `render(main, params)` fills `main`; it may return a function
 * to call on refresh ticks (every `refresh` ms) while the page is shown.
 */
export function page(name, title, render, opts = {}) {
  pages.set(name, { title, render, ...opts });
  if (opts.nav) nav.push({ name, title, group: opts.nav });
}

/** Repeats `f` every `ms` while the current page is shown. */
export function every(ms, f) {
  timers.push(setInterval(f, ms));
}

export function go(name, params = {}) {
  const q = new URLSearchParams(params).toString();
  const target = `#/${name}${q ? `?${q}` : ""}`;
  if (location.hash === target) render();
  else location.hash = target;
}

function parseHash() {
  const [path, q] = location.hash.replace(/^#\/?/, "").split("?");
  return { name: path || "overview", params: Object.fromEntries(new URLSearchParams(q || "")) };
}

async function render() {
  for (const t of timers) clearInterval(t);
  timers = [];
  const { name, params } = parseHash();
  const app = document.getElementById("app");
  const user = session.user;
  const open = name === "login";
  if (!session.token && !open) return go("login");
  if (session.token && user && user.password_change_required && name !== "password") return go("password");
  const p = pages.get(name) || pages.get("notfound");
  document.title = `${p.title} · Ferry`;
  const main = h("main", { id: "main" });
  if (p.bare) app.replaceChildren(main);
  else app.replaceChildren(layout(name), main);
  try {
    await p.render(main, params);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.code === "PASSWORD_CHANGE_REQUIRED")) return;
    showError(main, e);
  }
}

function layout(current) {
  const user = session.user || {};
  const groups = [...new Set(nav.map((n) => n.group))];
  const toggle = h("button", { class: "menu", "aria-expanded": "false", "aria-controls": "nav" }, "Menu");
  const links = h("nav", { id: "nav", "aria-label": "main" },
    groups.map((g) => h("div", { class: "group" }, h("div", { class: "group-title" }, g),
      nav.filter((n) => n.group === g).map((n) =>
        h("a", { href: `#/${n.name}`, "aria-current": n.name === current ? "page" : null }, n.title)))));
  toggle.addEventListener("click", () => {
    const open = links.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });
  return h("header", { class: "top" },
    h("a", { class: "brand", href: "#/overview" }, "Ferry"),
    toggle,
    links,
    h("div", { class: "who" },
      h("span", {}, `${user.username || ""} (${user.role || ""})`),
      h("button", { class: "link", onclick: logout }, "Log out")));
}

async function logout() {
  try { await api("POST", "/api/v5/logout"); } catch { /* the session ends either way */ }
  session.clear();
  go("login", { reason: "You are logged out." });
}

export function start() {
  window.addEventListener("hashchange", render);
  render();
}

// ---- login and the forced password change ----

page("login", "Log in", (main, params) => {
  const user = field("Username", { autocomplete: "username", value: "" });
  const pass = field("Password", { type: "password", autocomplete: "current-password" });
  const msg = h("div", {});
  if (params.reason) msg.append(h("p", { class: "notice" }, params.reason));
  const form = h("form", { class: "card narrow" },
    h("h1", {}, "Log in to Ferry"), msg, user.row, pass.row,
    h("button", { type: "submit", class: "primary" }, "Log in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("POST", "/api/v5/login", { username: user.input.value, password: pass.input.value });
      session.set(r.token, {
        username: user.input.value, role: r.role, version: r.version,
        password_change_required: r.password_change_required,
      });
      go(r.password_change_required ? "password" : "overview");
    } catch (e) {
      showError(msg, e);
    }
  });
  main.append(form);
  user.input.focus();
}, { bare: true });

page("password", "Change password", (main) => {
  const user = session.user || {};
  const forced = !!user.password_change_required;
  const old = field("Current password", { type: "password", autocomplete: "current-password" });
  const pw = field("New password", { type: "password", autocomplete: "new-password" });
  const again = field("New password again", { type: "password", autocomplete: "new-password" });
  const msg = h("div", {});
  const form = h("form", { class: "card narrow" },
    h("h1", {}, "Change password"),
    forced ? h("p", { class: "notice" },
      `The password of ${user.username} is still the default one. Choose a new one before anything else.`) : null,
    msg, old.row, pw.row, again.row,
    h("p", { class: "hint" }, "8 to 64 characters, with at least two of: letters, digits, symbols."),
    h("button", { type: "submit", class: "primary" }, "Change password"),
    forced ? h("button", { type: "button", class: "link", onclick: logout }, "Log out") : null);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (pw.input.value !== again.input.value) {
      showError(msg, new Error("The two new passwords differ."));
      return;
    }
    try {
      await api("POST", `/api/v5/users/${encodeURIComponent(user.username)}/change_pwd`,
        { old_pwd: old.input.value, new_pwd: pw.input.value });
      session.clear();
      go("login", { reason: "Password changed: log in with the new one." });
    } catch (e) {
      showError(msg, e);
    }
  });
  main.append(form);
}, { bare: true });

page("notfound", "Not found", (main) => {
  main.append(h("h1", {}, "Not found"), h("p", {}, "No such page. "), h("a", { href: "#/overview" }, "Back to the overview"));
});

// ---- lists that refresh ----

/** Every object of a list endpoint (`/api/v5/rules`, ...) with its metrics as `_m`. */
export async function withMetrics(path, idOf = (x) => x.name) {
  const r = await api("GET", `${path}?limit=1000`);
  const list = r.data || [];
  const ms = await Promise.all(list.map((x) =>
    api("GET", `${path}/${encodeURIComponent(idOf(x))}/metrics`).then((m) => m.metrics || {}, () => ({}))));
  list.forEach((x, i) => { x._m = ms[i]; });
  return list;
}

/**
 * A function that answers whether `data` differs from what it was given last time: pages
 * redraw a refreshed list only when it changed, so keyboard focus survives the refresh.
 */
export function changeTracker() {
  let last = "";
  return (data) => {
    const sig = JSON.stringify(data);
    if (sig === last) return false;
    last = sig;
    return true;
  };
}
