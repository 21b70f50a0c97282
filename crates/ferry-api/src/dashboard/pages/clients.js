// Clients (list, details, kick), subscriptions, topics and retained messages. Filters and the
// page number live in the URL (#/clients?like_clientid=...&page=2), so Back and reload keep them.
import { api, page, go, h, field, select, table, pager, status, toast, showError, fmt } from "../app.js";

const LIMITS = [["20", "20"], ["50", "50"], ["100", "100"], ["500", "500"]];

/** The query string of the non-empty entries of `o`. */
function qs(o) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}

function when(s) {
  if (!s) return "–";
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString("en-GB");
}

function protocol(c) {
  const v = { 3: "3.1", 4: "3.1.1", 5: "5.0" }[c.proto_ver] || String(c.proto_ver);
  return `${c.proto_name || "MQTT"} ${v}`;
}

const clientLink = (id) => h("a", { href: `#/client?${new URLSearchParams({ id })}` }, id);

/**
 * A filter form whose fields are [param, label, control?]; submitting goes to `name` with the
 * filled fields and page 1. Returns the form.
 */
function filters(name, params, defs) {
  const inputs = {};
  const rows = defs.map(([key, label, control]) => {
    const f = field(label, { name: key, value: params[key] || "" }, control);
    if (control) control.value = params[key] || "";
    inputs[key] = f.input;
    return f.row;
  });
  const limit = field("Per page", { name: "limit" }, select(LIMITS, params.limit || "20"));
  inputs.limit = limit.input;
  const form = h("form", { class: "card filters", role: "search" },
    h("div", { class: "row" }, rows, limit.row),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Search"),
      h("button", { type: "button", onclick: () => go(name, { limit: inputs.limit.value }) }, "Clear")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = { page: "1" };
    for (const [k, el] of Object.entries(inputs)) if (el.value.trim() !== "") p[k] = el.value.trim();
    go(name, p);
  });
  return form;
}

/** Loads `path` with the URL's paging and filter params, renders `columns` into `out`. */
async function listInto(out, name, path, params, keys, columns, empty) {
  const q = { page: params.page || "1", limit: params.limit || "20" };
  for (const k of keys) if (params[k]) q[k] = params[k];
  out.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  try {
    const r = await api("GET", `${path}${qs(q)}`);
    out.replaceChildren(table(columns, r.data || [], empty),
      pager(r.meta, (n) => go(name, { ...params, page: String(n) })));
  } catch (e) {
    showError(out, e);
  }
}

// ---- clients ----

const CLIENT_KEYS = ["like_clientid", "like_username", "conn_state", "proto_ver"];

page("clients", "Clients", async (main, params) => {
  const out = h("div", { id: "clients-list" });
  main.append(h("h1", {}, "Clients"),
    filters("clients", params, [
      ["like_clientid", "Client ID contains"],
      ["like_username", "Username contains"],
      ["conn_state", "State", select([["", "any"], ["connected", "connected"], ["disconnected", "disconnected"]])],
      ["proto_ver", "MQTT version", select([["", "any"], ["3", "3.1"], ["4", "3.1.1"], ["5", "5.0"]])],
    ]),
    out);
  await listInto(out, "clients", "/api/v5/clients", params, CLIENT_KEYS, [
    ["Client ID", (c) => clientLink(c.clientid)],
    ["Username", (c) => c.username || "–"],
    ["IP:port", (c) => `${c.ip_address}:${c.port}`],
    ["Protocol", protocol],
    ["Connected", (c) => status(c.connected ? "connected" : "disconnected")],
    ["Subscriptions", (c) => fmt.num(c.subscriptions_cnt)],
    ["Inflight", (c) => fmt.num(c.inflight_cnt)],
    ["Queue length", (c) => fmt.num(c.mqueue_len)],
    ["Connected at", (c) => when(c.connected_at)],
  ], "No clients match.");
}, { nav: "Monitor" });

// Every field of a client, in reading order, with a label and how to show it.
const CLIENT_FIELDS = [
  ["clientid", "Client ID"], ["username", "Username"], ["connected", "Connected", (v) => status(v ? "connected" : "disconnected")],
  ["ip_address", "IP address"], ["port", "Port", String], ["proto_name", "Protocol name"], ["proto_ver", "Protocol version"],
  ["keepalive", "Keep alive (s)"], ["clean_start", "Clean start", (v) => (v ? "yes" : "no")],
  ["expiry_interval", "Session expiry interval (s)"], ["connected_at", "Connected at", when], ["created_at", "Session created at", when],
  ["node", "Node"], ["subscriptions_cnt", "Subscriptions"], ["subscriptions_max", "Subscriptions max"],
  ["inflight_cnt", "Inflight"], ["inflight_max", "Inflight max"],
  ["mqueue_len", "Queue length"], ["mqueue_max", "Queue max"], ["mqueue_dropped", "Queue dropped"],
  ["recv_msg", "Messages received"], ["send_msg", "Messages sent"], ["recv_pkt", "Packets received"],
  ["send_pkt", "Packets sent"], ["recv_oct", "Bytes received"], ["send_oct", "Bytes sent"],
];

function show(v) {
  if (v === undefined || v === null || v === "") return "–";
  if (typeof v === "number") return fmt.num(v);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "object") return h("code", {}, JSON.stringify(v));
  return String(v);
}

page("client", "Client", async (main, params) => {
  const id = params.id || "";
  const back = h("p", {}, h("a", { href: "#/clients" }, "← All clients"));
  main.append(h("h1", {}, `Client ${id}`), back);
  let c;
  try {
    c = await api("GET", `/api/v5/clients/${encodeURIComponent(id)}`);
  } catch (e) {
    const box = h("div", {});
    main.append(box);
    showError(box, e);
    return;
  }
  const msg = h("div", {});
  const kick = h("button", { class: "danger", type: "button" }, "Kick");
  kick.addEventListener("click", async () => {
    if (!confirm(`Kick client ${id}? It is disconnected and its session is discarded.`)) return;
    kick.disabled = true;
    try {
      await api("DELETE", `/api/v5/clients/${encodeURIComponent(id)}`);
      toast(`Client ${id} was kicked.`);
      go("clients");
    } catch (e) {
      kick.disabled = false;
      showError(msg, e);
    }
  });
  const known = new Set(CLIENT_FIELDS.map(([k]) => k));
  const extra = Object.keys(c).filter((k) => !known.has(k)).map((k) => [k, k]);
  const subsBox = h("div", { id: "client-subscriptions" }, h("p", { class: "loading" }, "Loading…"));
  main.append(
    h("div", { class: "actions" }, kick, h("button", { type: "button", onclick: () => go("client", { id }) }, "Refresh")),
    msg,
    h("div", { class: "cards" },
      h("div", { class: "stat" }, h("div", { class: "label" }, "State"), h("div", { class: "value" }, status(c.connected ? "connected" : "disconnected"))),
      h("div", { class: "stat" }, h("div", { class: "label" }, "Subscriptions"), h("div", { class: "value" }, fmt.num(c.subscriptions_cnt))),
      h("div", { class: "stat" }, h("div", { class: "label" }, "Inflight"),
        h("div", { class: "value", id: "client-inflight" }, `${fmt.num(c.inflight_cnt)} of ${fmt.num(c.inflight_max)}`)),
      h("div", { class: "stat" }, h("div", { class: "label" }, "Queue length"),
        h("div", { class: "value", id: "client-queue" }, `${fmt.num(c.mqueue_len)} of ${fmt.num(c.mqueue_max)}`),
        c.mqueue_dropped ? h("div", { class: "label" }, `${fmt.num(c.mqueue_dropped)} dropped`) : null)),
    h("h2", {}, "Subscriptions"), subsBox,
    h("h2", {}, "Details"),
    h("div", { class: "table-wrap" }, h("table", { class: "details", id: "client-details" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Value"))),
      h("tbody", {}, [...CLIENT_FIELDS, ...extra].filter(([k]) => k in c).map(([k, label, f]) =>
        h("tr", {}, h("th", { scope: "row" }, label), h("td", {}, f ? f(c[k]) : show(c[k]))))))));
  try {
    const subs = await api("GET", `/api/v5/clients/${encodeURIComponent(id)}/subscriptions`);
    subsBox.replaceChildren(table(SUB_COLUMNS.filter(([t]) => t !== "Client ID"), subs || [], "No subscriptions."));
  } catch (e) {
    showError(subsBox, e);
  }
});

// ---- subscriptions and topics ----

const SUB_COLUMNS = [
  ["Client ID", (x) => clientLink(x.clientid)],
  ["Topic filter", (x) => h("code", {}, x.topic)],
  ["QoS", (x) => String(x.qos)],
  ["Share group", (x) => x.share_group || "–"],
  ["No local", (x) => (x.nl ? "yes" : "no")],
  ["Retain as published", (x) => (x.rap ? "yes" : "no")],
  ["Retain handling", (x) => String(x.rh)],
];

page("subscriptions", "Subscriptions", async (main, params) => {
  const out = h("div", { id: "subscriptions-list" });
  main.append(h("h1", {}, "Subscriptions"),
    filters("subscriptions", params, [
      ["clientid", "Client ID"],
      ["topic", "Topic filter (exact)"],
      ["match_topic", "Matches topic"],
      ["qos", "QoS", select([["", "any"], ["0", "0"], ["1", "1"], ["2", "2"]])],
      ["share_group", "Share group"],
    ]),
    out);
  await listInto(out, "subscriptions", "/api/v5/subscriptions", params,
    ["clientid", "topic", "match_topic", "qos", "share_group"], SUB_COLUMNS, "No subscriptions match.");
}, { nav: "Monitor" });

page("topics", "Topics", async (main, params) => {
  const out = h("div", { id: "topics-list" });
  main.append(h("h1", {}, "Topics"),
    h("p", { class: "hint" }, "Topic filters with at least one subscriber."),
    filters("topics", params, [["topic", "Topic filter (exact)"]]),
    out);
  await listInto(out, "topics", "/api/v5/topics", params, ["topic"], [
    ["Topic filter", (t) => h("code", {}, t.topic)],
    ["Subscribers", (t) => h("a", { href: `#/subscriptions?${new URLSearchParams({ topic: t.topic })}` }, "Show subscriptions")],
    ["Node", (t) => t.node],
  ], "No topics match.");
}, { nav: "Monitor" });

// ---- retained messages ----

/** A base64 payload as {kind: "text" | "hex", text, size}. */
export function decodePayload(b64) {
  let bin;
  try {
    bin = atob(b64 || "");
  } catch {
    return { kind: "base64", text: b64, size: 0 };
  }
  const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
  try {
    return { kind: "text", text: new TextDecoder("utf-8", { fatal: true }).decode(bytes), size: bytes.length };
  } catch {
    return { kind: "hex", text: [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" "), size: bytes.length };
  }
}

const retainedPath = (topic) => `/api/v5/mqtt/retainer/message/${encodeURIComponent(topic)}`;

page("retained", "Retained", async (main, params) => {
  const topic = params.topic || "#";
  const out = h("div", { id: "retained-list" });
  const reader = h("div", { id: "retained-message", "aria-live": "polite" });
  const msg = h("div", {});

  const filter = field("Topic filter", { name: "topic", value: topic });
  const limit = field("Per page", { name: "limit" }, select(LIMITS, params.limit || "20"));
  const form = h("form", { class: "card filters", role: "search" },
    h("div", { class: "row" }, filter.row, limit.row),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Search")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    go("retained", { topic: filter.input.value.trim() || "#", limit: limit.input.value, page: "1" });
  });
  const clearAll = h("button", { type: "button", class: "danger" }, "Delete all");
  clearAll.addEventListener("click", async () => {
    if (!confirm("Delete every retained message?")) return;
    try {
      await api("DELETE", "/api/v5/mqtt/retainer/messages");
      toast("Every retained message was deleted.");
      go("retained", { ...params, page: "1" });
    } catch (e) {
      showError(msg, e);
    }
  });
  main.append(h("h1", {}, "Retained messages"), form,
    h("div", { class: "actions" }, clearAll), msg, reader, out);

  async function read(m) {
    reader.replaceChildren(h("p", { class: "loading" }, "Loading…"));
    try {
      const r = await api("GET", retainedPath(m.topic));
      const p = decodePayload(r.payload);
      const label = p.kind === "text" ? `Payload (text, ${p.size} bytes)`
        : p.kind === "hex" ? `Payload (hex: not UTF-8, ${p.size} bytes)` : "Payload (base64)";
      reader.replaceChildren(h("section", { class: "card retained-read" },
        h("h2", {}, "Message on ", h("code", {}, r.topic)),
        h("p", {}, `QoS ${r.qos} · from ${r.from_clientid || "–"}${r.from_username ? ` (${r.from_username})` : ""} · published ${when(r.publish_at)}`),
        h("h3", {}, label),
        h("pre", { class: "payload", id: "retained-payload" }, p.text),
        h("div", { class: "actions" }, h("button", { type: "button", onclick: () => reader.replaceChildren() }, "Close"))));
    } catch (e) {
      showError(reader, e);
    }
  }

  async function del(m) {
    if (!confirm(`Delete the retained message on ${m.topic}?`)) return;
    try {
      await api("DELETE", retainedPath(m.topic));
      toast(`Deleted the retained message on ${m.topic}.`);
      go("retained", params);
    } catch (e) {
      showError(msg, e);
    }
  }

  await listInto(out, "retained", "/api/v5/mqtt/retainer/messages", { ...params, topic }, ["topic"], [
    ["Topic", (m) => h("code", {}, m.topic)],
    ["Actions", (m) => h("span", { class: "cell-actions" },
      h("button", { type: "button", onclick: () => read(m), "aria-label": `Read ${m.topic}` }, "Read"),
      h("button", { type: "button", class: "danger", onclick: () => del(m), "aria-label": `Delete ${m.topic}` }, "Delete"))],
    ["QoS", (m) => String(m.qos)],
    ["From client", (m) => m.from_clientid || "–"],
    ["From username", (m) => m.from_username || "–"],
    ["Published at", (m) => when(m.publish_at)],
  ], "No retained messages match.");
}, { nav: "Monitor" });
