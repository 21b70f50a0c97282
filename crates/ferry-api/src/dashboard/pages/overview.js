// Overview: the node, its gauges, the rates now, live charts over the last hour and the health
// of every connector, action and source. It never lists clients, so it stays fast with
// any number of them. Built once; every 5 s only the values, the charts and the health list
// are updated in place.
import { api, page, every, h, status, fmt, showError } from "../app.js";

const SVG = "http://www.w3.org/2000/svg";
const SAMPLE_SECS = 10;

/** An SVG element with attributes (SVG attributes are allowed by the CSP; style is not). */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A stat card whose value can be changed later. */
function stat(label) {
  const value = h("div", { class: "value" }, "–");
  const card = h("div", { class: "stat" }, h("div", { class: "label" }, label), value);
  return { card, set(v) { value.textContent = v; } };
}

// Series styles: a colour and a dash pattern each, so the lines differ without colour too.
const STYLES = [
  { color: "#0b5cad", dash: null },
  { color: "#1a7f37", dash: "6 3" },
  { color: "#c62828", dash: "2 3" },
];

function clock(ms, secs) {
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}${secs ? `:${two(d.getSeconds())}` : ""}`;
}

/** A "nice" upper bound for the y axis: 1, 2, 2.5 or 5 times a power of ten. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function short(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(v < 10 && v % 1 ? 2 : 0)}`;
}

/**
 * A line chart drawn as inline SVG: `series` are {label, value(sample, prev) → number}.
 * Returns {el, update(samples)}; samples are the monitor's, oldest first.
 */
function lineChart(title, unit, series) {
  const svg = s("svg", { role: "img", "aria-label": title });
  const legend = h("div", { class: "legend" });
  const values = series.map((sr, i) => {
    const v = h("span", { class: "legend-value" }, "–");
    const st = STYLES[i % STYLES.length];
    legend.append(h("span", { class: "legend-item" },
      s("svg", { class: "swatch", width: 22, height: 10, "aria-hidden": "true" },
        s("line", { x1: 1, y1: 5, x2: 21, y2: 5, stroke: st.color, "stroke-width": 2.5, "stroke-dasharray": st.dash })),
      `${sr.label}: `, v));
    return v;
  });
  const el = h("section", { class: "chart card" }, h("h3", {}, title), svg, legend);

  function update(samples) {
    const W = Math.max(240, Math.round(svg.getBoundingClientRect().width) || 560);
    const H = Math.max(100, Math.round(svg.getBoundingClientRect().height) || 140), L = 44, R = 8, T = 8, B = 20;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const pts = series.map((sr) => samples.map((x, i) => [x.time_stamp, sr.value(x, samples[i - 1])]));
    const last = pts.map((p) => (p.length ? p[p.length - 1][1] : undefined));
    values.forEach((v, i) => { v.textContent = last[i] === undefined ? "–" : `${short(last[i])}${unit}`; });
    const kids = [];
    if (samples.length < 2) {
      kids.push(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-note" },
        "Collecting samples (one every 10 s)…"));
      svg.replaceChildren(...kids);
      return;
    }
    const t1 = samples[samples.length - 1].time_stamp;
    const t0 = Math.max(samples[0].time_stamp, t1 - 3600 * 1000);
    const max = niceMax(Math.max(0, ...pts.flat().map(([, v]) => v)));
    const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / max) * (H - T - B);
    const secs = t1 - t0 < 10 * 60 * 1000;
    // Axes and grid, labels: the max, half of it, 0; the start, middle and end times.
    kids.push(s("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
    kids.push(s("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
    kids.push(s("line", { x1: L, y1: y(max / 2), x2: W - R, y2: y(max / 2), class: "grid" }));
    kids.push(s("line", { x1: L, y1: T, x2: W - R, y2: T, class: "grid" }));
    kids.push(s("text", { x: L - 4, y: T + 4, "text-anchor": "end", class: "tick" }, `${short(max)}${unit}`));
    kids.push(s("text", { x: L - 4, y: y(max / 2) + 4, "text-anchor": "end", class: "tick" }, short(max / 2)));
    kids.push(s("text", { x: L - 4, y: H - B + 4, "text-anchor": "end", class: "tick" }, "0"));
    kids.push(s("text", { x: L, y: H - 4, "text-anchor": "start", class: "tick" }, clock(t0, secs)));
    if (W > 320) kids.push(s("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", class: "tick" }, clock((t0 + t1) / 2, secs)));
    kids.push(s("text", { x: W - R, y: H - 4, "text-anchor": "end", class: "tick" }, clock(t1, secs)));
    pts.forEach((p, i) => {
      const st = STYLES[i % STYLES.length];
      const d = p.filter(([t]) => t >= t0).map(([t, v], j) => `${j ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
      kids.push(s("path", { d, fill: "none", stroke: st.color, "stroke-width": 2, "stroke-dasharray": st.dash, "stroke-linejoin": "round" }));
    });
    svg.replaceChildren(s("title", {}, `${title}: ${series.map((sr, i) => `${sr.label} ${last[i] === undefined ? "–" : short(last[i])}${unit}`).join(", ")}`), ...kids);
  }
  return { el, update };
}

/** Per second from a count per 10 s interval. */
const perSec = (key) => (x) => Number(x[key] || 0) / SAMPLE_SECS;
const gauge = (key) => (x) => Number(x[key] || 0);

const KINDS = [
  { path: "connectors", noun: "Connector" },
  { path: "actions", noun: "Action" },
  { path: "sources", noun: "Source" },
];

page("overview", "Overview", async (main) => {
  const nodeBox = h("div", { class: "card overview-node" }, h("p", { class: "loading" }, "Loading…"));

  const gauges = [
    ["connections.count", "Connections"],
    ["live_connections.count", "Live connections"],
    ["sessions.count", "Sessions"],
    ["subscriptions.count", "Subscriptions"],
    ["topics.count", "Topics"],
    ["retained.count", "Retained messages"],
  ].map(([key, label]) => ({ key, ...stat(label) }));
  const statsErr = h("div", {});

  const rates = [
    ["received_msg_rate", "Messages in"],
    ["sent_msg_rate", "Messages out"],
    ["dropped_msg_rate", "Messages dropped"],
    ["kafka_success_msg_rate", "Kafka records succeeded"],
    ["kafka_failed_msg_rate", "Kafka records failed"],
  ].map(([key, label]) => ({ key, ...stat(label) }));
  const ratesErr = h("div", {});

  const charts = [
    lineChart("Messages per second", "/s", [
      { label: "in", value: perSec("received") },
      { label: "out", value: perSec("sent") },
      { label: "dropped", value: perSec("dropped") },
    ]),
    lineChart("Kafka records per second", "/s", [
      { label: "succeeded", value: perSec("kafka_success") },
      { label: "failed", value: perSec("kafka_failed") },
    ]),
    lineChart("Connections", "", [{ label: "connections", value: gauge("connections") }]),
  ];
  const chartsErr = h("div", {});

  const healthSummary = h("p", { class: "hint" }, "Loading…");
  const healthBody = h("div", {});

  main.append(
    h("h1", {}, "Overview"),
    nodeBox,
    h("section", { "aria-labelledby": "ov-stats" }, h("h2", { id: "ov-stats" }, "Now"),
      statsErr, h("div", { class: "cards", id: "overview-stats" }, gauges.map((g) => g.card))),
    h("section", { "aria-labelledby": "ov-rates" }, h("h2", { id: "ov-rates" }, "Rates now"),
      ratesErr, h("div", { class: "cards", id: "overview-rates" }, rates.map((g) => g.card))),
    h("section", { "aria-labelledby": "ov-charts" }, h("h2", { id: "ov-charts" }, "Last hour"),
      chartsErr, h("div", { class: "charts" }, charts.map((c) => c.el))),
    h("section", { "aria-labelledby": "ov-health" }, h("h2", { id: "ov-health" }, "Health of Kafka integration"),
      healthSummary, healthBody),
  );

  async function loadNode() {
    const nodes = await api("GET", "/api/v5/nodes");
    const n = (nodes && nodes[0]) || {};
    const up = n.node_status === "running";
    nodeBox.replaceChildren(h("dl", { class: "facts" },
      h("div", {}, h("dt", {}, "Node"), h("dd", {}, n.node || "–")),
      h("div", {}, h("dt", {}, "Status"), h("dd", {},
        h("span", { class: `status st-${up ? "connected" : "stopped"}`, id: "node-status" }, n.node_status || "unknown"))),
      h("div", {}, h("dt", {}, "Version"), h("dd", {}, n.version || "–")),
      h("div", {}, h("dt", {}, "Uptime"), h("dd", { id: "node-uptime" }, n.uptime === undefined ? "–" : fmt.uptime(n.uptime))),
      h("div", {}, h("dt", {}, "Memory"), h("dd", {}, n.memory_used ? `${(n.memory_used / 1048576).toFixed(1)} MiB` : "–"))));
  }

  async function loadStats() {
    const st = await api("GET", "/api/v5/stats?aggregate=true");
    for (const g of gauges) g.set(fmt.num(st[g.key]));
    statsErr.replaceChildren();
  }

  async function loadRates() {
    const cur = await api("GET", "/api/v5/monitor_current");
    for (const r of rates) r.set(fmt.rate(cur[r.key]));
    ratesErr.replaceChildren();
  }

  async function loadCharts() {
    const samples = (await api("GET", "/api/v5/monitor")) || [];
    for (const c of charts) c.update(samples);
    chartsErr.replaceChildren();
  }

  async function loadHealth() {
    const lists = await Promise.all(KINDS.map((k) => api("GET", `/api/v5/${k.path}?limit=1000`)));
    const items = [];
    let more = false;
    lists.forEach((l, i) => {
      if (l && l.meta && l.meta.hasnext) more = true;
      for (const o of (l && l.data) || []) items.push({ kind: KINDS[i], ...o });
    });
    const bad = (o) => o.status !== "connected";
    // Not connected first (disabled ones after those that should run), then by kind and name.
    const rank = (o) => (!bad(o) ? 2 : o.enable === false ? 1 : 0);
    items.sort((a, b) => rank(a) - rank(b) || KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind) || String(a.name).localeCompare(String(b.name)));
    const nBad = items.filter(bad).length;
    if (!items.length) {
      healthSummary.textContent = "No connectors, actions or sources yet.";
      healthBody.replaceChildren(h("p", {}, "Add them on the ",
        h("a", { href: "#/connectors" }, "Connectors"), ", ",
        h("a", { href: "#/actions" }, "Actions"), " and ",
        h("a", { href: "#/sources" }, "Sources"), " pages."));
      return;
    }
    healthSummary.replaceChildren(nBad
      ? h("strong", { class: "health-bad" }, `${nBad} of ${items.length} not connected.`)
      : h("span", { class: "health-ok" }, `All ${items.length} connected.`),
      more ? " (The first 1,000 of each kind are shown.)" : "");
    healthBody.replaceChildren(h("div", { class: "table-wrap" },
      h("table", { id: "overview-health" },
        h("thead", {}, h("tr", {}, ["Kind", "Name", "Status", "Enabled"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, items.map((o) => h("tr", { class: bad(o) ? "attention" : null },
          h("td", {}, o.kind.noun),
          h("td", {}, h("a", { href: `#/${o.kind.path}` }, o.name)),
          h("td", {}, status(o.status, o.status_reason)),
          h("td", {}, o.enable === false ? "no" : "yes")))))));
  }

  // Each part loads on its own: a slow or failing one does not hold up the others.
  const parts = [
    [loadNode, nodeBox],
    [loadStats, statsErr],
    [loadRates, ratesErr],
    [loadCharts, chartsErr],
    [loadHealth, healthBody],
  ];
  let busy = false;
  async function refresh() {
    if (busy || !main.isConnected) return;
    busy = true;
    try {
      await Promise.all(parts.map(async ([f, where]) => {
        try {
          await f();
        } catch (e) {
          if (e.status === 401 || e.code === "PASSWORD_CHANGE_REQUIRED") return;
          showError(where, e);
        }
      }));
    } finally {
      busy = false;
    }
  }
  every(5000, refresh);
  await refresh();
}, { nav: "Monitor" });
