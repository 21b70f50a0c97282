// Integration: Kafka connectors (with the "Test" button), producer actions (with live
// metrics) and consumer sources (with lag). Every object is read and written through
// /api/v5/{connectors,actions,sources}: the config file's sections as JSON plus `name`/`type`.
import {
  api, page, every, go, h, field, select, table, status, toast, showError, fmt, withMetrics, changeTracker,
} from "../app.js";

const enc = encodeURIComponent;

/** A labelled checkbox: {row, input}. */
let cbSeq = 0;
function checkbox(label, checked) {
  const id = `icb${++cbSeq}`;
  const input = h("input", { type: "checkbox", id, checked: !!checked });
  return { row: h("div", { class: "cb-row" }, input, h("label", { for: id }, label)), input };
}

/** Asks in place (no native dialog): the question with a Yes and a Cancel button. */
function confirmIn(where, question, yesText, onYes) {
  const box = h("div", { class: "notice confirm", role: "alertdialog", "aria-label": question },
    h("p", {}, question),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "danger", onclick: async () => { box.remove(); await onYes(); } }, yesText),
      h("button", { type: "button", onclick: () => box.remove() }, "Cancel")));
  where.replaceChildren(box);
  box.querySelector("button").focus();
}

/**
 * Deletes `kind`/`name` after a confirmation in `where`; a 409 (something uses it) shows
 * who, and offers to delete with cascade. Calls `done` after a deletion.
 */
function deleteFlow(where, kind, noun, name, done) {
  const del = async (cascade) => {
    try {
      await api("DELETE", `/api/v5/${kind}/${enc(name)}${cascade ? "?cascade=true" : ""}`);
      toast(`${noun} ${name} deleted.`);
      where.replaceChildren();
      await done();
    } catch (e) {
      if (e.status === 409) {
        where.replaceChildren(h("div", { class: "error", role: "alert" },
          h("strong", {}, `${noun} ${name} is in use: `), e.message,
          h("div", { class: "actions" },
            h("button", { type: "button", class: "danger", onclick: () => del(true) },
              kind === "actions" ? "Delete and remove it from those rules" : "Delete it and everything that uses it"),
            h("button", { type: "button", onclick: () => where.replaceChildren() }, "Cancel"))));
      } else {
        showError(where, e);
      }
    }
  };
  confirmIn(where, `Delete ${noun.toLowerCase()} ${name}?`, "Yes, delete", () => del(false));
}

async function setEnabled(kind, name, enable, msg, done) {
  try {
    await api("PUT", `/api/v5/${kind}/${enc(name)}/enable/${enable}`);
    toast(`${name} ${enable ? "enabled" : "disabled"}.`);
    await done();
  } catch (e) { showError(msg, e); }
}

function enabledText(x) {
  return h("span", { class: `status st-${x.enable === false ? "disabled" : "enabled"}` }, x.enable === false ? "disabled" : "enabled");
}

/** Stat cards: [[label, text], ...]; each card carries data-metric=label for tests. */
function statCards(items) {
  return items.map(([k, v]) => h("div", { class: "stat", "data-metric": k },
    h("div", { class: "label" }, k), h("div", { class: "value" }, v)));
}

/** Empty text → null (the API's "not set"). */
const opt = (s) => (s.trim() === "" ? null : s.trim());

// ===================== connectors =====================

page("connectors", "Connectors", async (main) => {
  const msg = h("div", {});
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  main.append(h("h1", {}, "Connectors"),
    h("p", { class: "hint" }, "Kafka clusters. Actions and sources use a connector."),
    h("div", { class: "actions" }, h("button", { class: "primary", onclick: () => go("connector") }, "New connector")),
    msg, body);
  let last = "";
  async function load() {
    const r = await api("GET", "/api/v5/connectors?limit=1000");
    // Redraw only when something changed, so focus survives the refresh.
    const sig = JSON.stringify(r.data || []);
    if (sig === last) return;
    last = sig;
    body.replaceChildren(table([
      ["Name", (x) => h("a", { href: `#/connector?id=${enc(x.name)}` }, x.name)],
      ["Bootstrap hosts", (x) => h("code", {}, x.bootstrap_hosts)],
      ["Status", (x) => status(x.status)],
      ["Reason", (x) => x.status_reason || ""],
      ["Enabled", enabledText],
      ["", (x) => h("div", { class: "row-actions" },
        h("button", { onclick: () => go("connector", { id: x.name }), "aria-label": `Edit connector ${x.name}` }, "Edit"),
        h("button", {
          "aria-label": `${x.enable === false ? "Enable" : "Disable"} connector ${x.name}`,
          onclick: () => setEnabled("connectors", x.name, x.enable === false, msg, load),
        }, x.enable === false ? "Enable" : "Disable"),
        h("button", { class: "danger", "aria-label": `Delete connector ${x.name}`, onclick: () => deleteFlow(msg, "connectors", "Connector", x.name, load) }, "Delete"))],
    ], r.data || [], "No connectors yet: create one with New connector."));
  }
  every(5000, () => load().catch(() => {}));
  await load();
}, { nav: "Integration" });

page("connector", "Connector", async (main, params) => {
  const id = params.id;
  let c = { bootstrap_hosts: "127.0.0.1:9092", connect_timeout: "5s", ssl: { enable: false, verify: true }, authentication: null };
  if (id) c = await api("GET", `/api/v5/connectors/${enc(id)}`);
  const ssl = c.ssl || {};
  const auth = c.authentication || {};

  const name = field("Name", { value: id || "my_kafkaserver", readonly: !!id, autocomplete: "off" });
  const hosts = field("Bootstrap hosts", { value: c.bootstrap_hosts || "", placeholder: "host1:9092,host2:9092", autocomplete: "off" });
  const timeout = field("Connect timeout", { value: c.connect_timeout || "5s", placeholder: "5s" });
  const tls = checkbox("Enable TLS", ssl.enable);
  const verify = checkbox("Verify the brokers' certificates", ssl.verify !== false);
  const cacert = field("CA certificate file (PEM)", { value: ssl.cacertfile || "", placeholder: "/etc/ferry/ca.pem" });
  const cert = field("Client certificate file (PEM)", { value: ssl.certfile || "" });
  const key = field("Client key file (PEM)", { value: ssl.keyfile || "" });
  const mech = field("SASL mechanism", {}, select([
    ["none", "None"], ["plain", "PLAIN"], ["scram_sha_256", "SCRAM-SHA-256"], ["scram_sha_512", "SCRAM-SHA-512"],
  ], auth.mechanism || "none"));
  const user = field("SASL username", { value: auth.username || "", autocomplete: "off" });
  const pass = field("SASL password", { type: "password", value: auth.password || "", autocomplete: "new-password" });
  const tlsBox = h("div", {}, verify.row, h("div", { class: "row" }, cacert.row, cert.row, key.row));
  const saslBox = h("div", { class: "row" }, user.row, pass.row);
  const sync = () => { tlsBox.hidden = !tls.input.checked; saslBox.hidden = mech.input.value === "none"; };
  tls.input.addEventListener("change", sync);
  mech.input.addEventListener("change", sync);
  sync();

  const body = () => {
    const b = {
      type: "kafka_producer",
      bootstrap_hosts: hosts.input.value.trim(),
      connect_timeout: timeout.input.value.trim() || "5s",
      ssl: { enable: tls.input.checked, verify: verify.input.checked },
      authentication: null,
    };
    if (tls.input.checked) {
      for (const [k, f] of [["cacertfile", cacert], ["certfile", cert], ["keyfile", key]]) {
        if (opt(f.input.value)) b.ssl[k] = opt(f.input.value);
      }
    }
    if (mech.input.value !== "none") {
      b.authentication = { mechanism: mech.input.value, username: user.input.value, password: pass.input.value };
    }
    return b;
  };

  const testOut = h("div", { class: "probe-result", "aria-live": "polite" });
  const msg = h("div", {});
  const delBox = h("div", {});
  const testBtn = h("button", {
    type: "button",
    onclick: async () => {
      testBtn.disabled = true;
      testOut.replaceChildren(h("p", { class: "loading" }, "Testing the connection…"));
      try {
        await api("POST", "/api/v5/connectors_probe", { ...body(), name: name.input.value.trim() || "probe" });
        testOut.replaceChildren(h("p", { class: "ok-box", role: "status" }, h("strong", {}, "Connected"), `: ${hosts.input.value.trim()} answered.`));
      } catch (e) {
        testOut.replaceChildren(h("div", { class: "error", role: "alert" },
          h("strong", {}, "Cannot connect: "), e.message,
          e.problems && e.problems.length > 1 ? h("ul", {}, e.problems.map((p) => h("li", {}, p))) : null));
      } finally {
        testBtn.disabled = false;
      }
    },
  }, "Test");

  const form = h("form", { class: "card" },
    h("div", { class: "row" }, name.row, hosts.row, timeout.row),
    h("fieldset", {}, h("legend", {}, "TLS"), tls.row, tlsBox),
    h("fieldset", {}, h("legend", {}, "SASL authentication"), mech.row, saslBox),
    testOut, msg,
    h("div", { class: "actions" },
      testBtn,
      h("button", { type: "submit", class: "primary" }, id ? "Save" : "Create"),
      id ? h("button", { type: "button", class: "danger", onclick: () => deleteFlow(delBox, "connectors", "Connector", id, () => go("connectors")) }, "Delete") : null,
      h("a", { href: "#/connectors" }, "Back to the connectors")),
    delBox);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.replaceChildren();
    try {
      if (id) {
        await api("PUT", `/api/v5/connectors/${enc(id)}`, body());
        msg.replaceChildren(h("p", { class: "ok-box", role: "status" }, `Connector ${id} saved.`));
        await loadStatus();
      } else {
        const r = await api("POST", "/api/v5/connectors", { ...body(), name: name.input.value.trim() });
        toast(`Connector ${r.name} created.`);
        go("connector", { id: r.name });
      }
    } catch (e) { showError(msg, e); }
  });

  const statusLine = h("p", { class: "status-line" });
  async function loadStatus() {
    const x = await api("GET", `/api/v5/connectors/${enc(id)}`);
    statusLine.replaceChildren("Status: ", status(x.status, x.status_reason), " · ", enabledText(x));
  }
  main.append(h("h1", {}, id ? `Connector ${id}` : "New connector"));
  if (id) main.append(statusLine);
  main.append(form);
  if (id) {
    every(5000, () => loadStatus().catch(() => {}));
    await loadStatus();
  }
});

// ===================== producer actions =====================

const ACTION_CARDS = (m) => [
  ["Matched", fmt.num(m.matched)], ["Success", fmt.num(m.success)], ["Failed", fmt.num(m.failed)],
  ["Dropped", fmt.num(m.dropped)], ["Dropped (queue full)", fmt.num(m["dropped.queue_full"])],
  ["Queuing", fmt.num(m.queuing)], ["Inflight", fmt.num(m.inflight)], ["Retried", fmt.num(m.retried)],
  ["Rate", fmt.rate(m.rate)], ["Rate (5 min)", fmt.rate(m.rate_last5m)], ["Max rate", fmt.rate(m.rate_max)],
  ["Kafka latency p50", fmt.us(m["latency.p50_us"])], ["Kafka latency p99", fmt.us(m["latency.p99_us"])],
];

page("actions", "Actions", async (main) => {
  const msg = h("div", {});
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  main.append(h("h1", {}, "Actions"),
    h("p", { class: "hint" }, "Kafka producer actions. Rules use them as kafka:NAME. Metrics refresh every 5 seconds."),
    h("div", { class: "actions" }, h("button", { class: "primary", onclick: () => go("action") }, "New action")),
    msg, body);
  const changed = changeTracker();
  async function load() {
    const list = await withMetrics("/api/v5/actions");
    if (!changed(list)) return;
    body.replaceChildren(table([
      ["Name", (x) => h("a", { href: `#/action?id=${enc(x.name)}` }, x.name)],
      ["Connector", (x) => x.connector],
      ["Topic", (x) => h("code", {}, x.topic)],
      ["Status", (x) => status(x.status, x.status_reason)],
      ["Enabled", enabledText],
      ["Matched", (x) => fmt.num(x._m.matched)],
      ["Success", (x) => fmt.num(x._m.success)],
      ["Failed", (x) => fmt.num(x._m.failed)],
      ["Dropped", (x) => fmt.num(x._m.dropped)],
      ["Queuing", (x) => fmt.num(x._m.queuing)],
      ["Inflight", (x) => fmt.num(x._m.inflight)],
      ["Rate", (x) => fmt.rate(x._m.rate)],
      ["Latency p50 / p99", (x) => `${fmt.us(x._m["latency.p50_us"])} / ${fmt.us(x._m["latency.p99_us"])}`],
      ["", (x) => h("div", { class: "row-actions" },
        h("button", {
          "aria-label": `${x.enable === false ? "Enable" : "Disable"} action ${x.name}`,
          onclick: () => setEnabled("actions", x.name, x.enable === false, msg, load),
        }, x.enable === false ? "Enable" : "Disable"),
        h("button", { class: "danger", "aria-label": `Delete action ${x.name}`, onclick: () => deleteFlow(msg, "actions", "Action", x.name, load) }, "Delete"))],
    ], list, "No Kafka actions yet: create one with New action."));
  }
  every(5000, () => load().catch(() => {}));
  await load();
}, { nav: "Integration" });

page("action", "Action", async (main, params) => {
  const id = params.id;
  const connectors = (await api("GET", "/api/v5/connectors?limit=1000")).data || [];
  let a = {
    connector: connectors.length ? connectors[0].name : "", topic: "", key: "${clientid}", value: "${.}",
    timestamp: "${publish_received_at}", headers: null, partition_strategy: "key_hash", query_mode: "async",
    required_acks: "all", compression: "none", max_queue_messages: 100000, overflow: "drop_oldest", idempotence: true,
  };
  if (id) a = await api("GET", `/api/v5/actions/${enc(id)}`);

  const name = field("Name", { value: id || "", readonly: !!id, autocomplete: "off", placeholder: "temp_hum_to_kafka" });
  const conn = field("Connector", {}, select(
    connectors.length ? connectors.map((c) => [c.name, `${c.name} (${c.bootstrap_hosts})`]) : [["", "No connectors: create one first"]],
    a.connector));
  const topic = field("Kafka topic", { value: a.topic || "", placeholder: "emqx or t-${payload.site}" });
  const key = field("Message key", { value: a.key ?? "${clientid}", class: "mono" });
  const value = field("Message value", {}, h("textarea", { class: "code tpl", spellcheck: "false" }));
  value.input.value = a.value ?? "${.}";
  const ts = field("Timestamp", { value: a.timestamp ?? "${publish_received_at}", class: "mono" });
  const headers = field("Headers (a template rendering an object)", { value: a.headers || "", placeholder: "${pub_props.'User-Property'}", class: "mono" });
  const strategy = field("Partition strategy", {}, select([["key_hash", "key hash (murmur2, like Java)"], ["random", "random"], ["round_robin", "round robin"]], a.partition_strategy));
  const mode = field("Query mode", {}, select([["async", "async (acknowledge the publisher at once)"], ["sync", "sync (acknowledge after Kafka did)"]], a.query_mode));
  const acks = field("Required acks", {}, select([["all", "all"], ["leader", "leader"], ["none", "none"]], a.required_acks));
  const comp = field("Compression", {}, select([["none", "none"], ["gzip", "gzip"], ["snappy", "snappy"], ["lz4", "lz4"], ["zstd", "zstd"]], a.compression));
  const maxq = field("Max queue messages", { type: "number", min: "1", value: String(a.max_queue_messages ?? 100000) });
  const overflow = field("When the queue is full", {}, select([["drop_oldest", "drop the oldest"], ["drop_newest", "drop the newest"]], a.overflow));

  const msg = h("div", {});
  const delBox = h("div", {});
  const form = h("form", { class: "card" },
    h("div", { class: "row" }, name.row, conn.row, topic.row),
    h("div", { class: "row" }, key.row, ts.row),
    value.row,
    headers.row,
    h("p", { class: "hint" }, "Templates: ${clientid}, ${topic}, ${payload.temp}, ${.} (the whole rule output), any column the rule selects."),
    h("div", { class: "row" }, strategy.row, mode.row, acks.row, comp.row),
    h("div", { class: "row" }, maxq.row, overflow.row),
    msg,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, id ? "Save" : "Create"),
      id ? h("button", { type: "button", class: "danger", onclick: () => deleteFlow(delBox, "actions", "Action", id, () => go("actions")) }, "Delete") : null,
      h("a", { href: "#/actions" }, "Back to the actions")),
    delBox);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.replaceChildren();
    const b = {
      type: "kafka_producer",
      connector: conn.input.value, topic: topic.input.value.trim(), key: key.input.value, value: value.input.value,
      timestamp: ts.input.value, headers: opt(headers.input.value), partition_strategy: strategy.input.value,
      query_mode: mode.input.value, required_acks: acks.input.value, compression: comp.input.value,
      max_queue_messages: Number(maxq.input.value), overflow: overflow.input.value,
      // Idempotence needs acks from all replicas; turn it off for the weaker settings.
      idempotence: acks.input.value === "all" ? a.idempotence !== false : false,
    };
    try {
      if (id) {
        await api("PUT", `/api/v5/actions/${enc(id)}`, b);
        msg.replaceChildren(h("p", { class: "ok-box", role: "status" }, `Action ${id} saved.`));
      } else {
        const r = await api("POST", "/api/v5/actions", { ...b, name: name.input.value.trim() });
        toast(`Action ${r.name} created: rules use it as kafka:${r.name}.`);
        go("action", { id: r.name });
      }
    } catch (e) { showError(msg, e); }
  });

  main.append(h("h1", {}, id ? `Action ${id}` : "New Kafka action"));
  if (id) {
    const statusLine = h("p", { class: "status-line" });
    const cards = h("div", { class: "cards action-metrics" });
    const mMsg = h("div", {});
    const load = async () => {
      const [x, m] = await Promise.all([
        api("GET", `/api/v5/actions/${enc(id)}`),
        api("GET", `/api/v5/actions/${enc(id)}/metrics`),
      ]);
      statusLine.replaceChildren("Status: ", status(x.status, x.status_reason), " · ", enabledText(x),
        " · used by rules as ", h("code", {}, `kafka:${id}`));
      cards.replaceChildren(...statCards(ACTION_CARDS(m.metrics || {})));
    };
    main.append(statusLine,
      h("section", { "aria-label": "metrics" },
        h("h2", {}, "Metrics"),
        h("p", { class: "hint" }, "Refreshed every 5 seconds."),
        cards, mMsg,
        h("div", { class: "actions" },
          h("button", {
            onclick: async () => {
              try {
                await api("PUT", `/api/v5/actions/${enc(id)}/metrics/reset`);
                toast("Metrics reset.");
                await load();
              } catch (e) { showError(mMsg, e); }
            },
          }, "Reset metrics"))),
      h("h2", {}, "Settings"));
    every(5000, () => load().catch(() => {}));
    await load();
  }
  main.append(form);
});

// ===================== consumer sources =====================

function lagText(l) {
  if (l === undefined || l === null) return "–";
  if (Array.isArray(l)) return l.map((e) => (typeof e === "object" ? Object.values(e).join(" ") : String(e))).join(", ");
  if (typeof l === "object") return Object.entries(l).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
  return String(l);
}

page("sources", "Sources", async (main) => {
  const msg = h("div", {});
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  main.append(h("h1", {}, "Sources"),
    h("p", { class: "hint" }, "Kafka consumer sources: records from Kafka topics published as MQTT messages. Refreshed every 5 seconds."),
    h("div", { class: "actions" }, h("button", { class: "primary", onclick: () => go("source") }, "New source")),
    msg, body);
  const changed = changeTracker();
  async function load() {
    const list = await withMetrics("/api/v5/sources");
    if (!changed(list)) return;
    body.replaceChildren(table([
      ["Name", (x) => h("a", { href: `#/source?id=${enc(x.name)}` }, x.name)],
      ["Connector", (x) => x.connector],
      ["Topics", (x) => (x.topics && x.topics.length ? x.topics.join(", ") : x.topic_pattern || "")],
      ["MQTT topic", (x) => h("code", {}, x.mqtt_topic)],
      ["Status", (x) => status(x.status, x.status_reason)],
      ["Enabled", enabledText],
      ["Received", (x) => fmt.num(x._m.received)],
      ["Delivered", (x) => fmt.num(x._m.delivered)],
      ["Failed", (x) => fmt.num(x._m.failed)],
      ["Inflight", (x) => fmt.num(x._m.inflight)],
      ["Lag", (x) => fmt.num(x._m.lag)],
      ["", (x) => h("div", { class: "row-actions" },
        h("button", {
          "aria-label": `${x.enable === false ? "Enable" : "Disable"} source ${x.name}`,
          onclick: () => setEnabled("sources", x.name, x.enable === false, msg, load),
        }, x.enable === false ? "Enable" : "Disable"),
        h("button", { class: "danger", "aria-label": `Delete source ${x.name}`, onclick: () => deleteFlow(msg, "sources", "Source", x.name, load) }, "Delete"))],
    ], list, "No Kafka sources yet: create one with New source."));
  }
  every(5000, () => load().catch(() => {}));
  await load();
}, { nav: "Integration" });

page("source", "Source", async (main, params) => {
  const id = params.id;
  const connectors = (await api("GET", "/api/v5/connectors?limit=1000")).data || [];
  let s = {
    connector: connectors.length ? connectors[0].name : "", topics: [], group_id: null, offset_reset: "latest",
    mqtt_topic: "", payload: "${value}", qos: 1, retain: false,
  };
  if (id) s = await api("GET", `/api/v5/sources/${enc(id)}`);

  const name = field("Name", { value: id || "", readonly: !!id, autocomplete: "off" });
  const conn = field("Connector", {}, select(
    connectors.length ? connectors.map((c) => [c.name, `${c.name} (${c.bootstrap_hosts})`]) : [["", "No connectors: create one first"]],
    s.connector));
  const topics = field("Kafka topics (comma-separated)", { value: (s.topics || []).join(", ") });
  const group = field("Consumer group id", { value: s.group_id || "", placeholder: "ferry-source-NAME" });
  const reset = field("Offset reset", {}, select([["latest", "latest"], ["earliest", "earliest"]], s.offset_reset));
  const mqttTopic = field("MQTT topic template", { value: s.mqtt_topic || "", placeholder: "vehicles/${key}/commands", class: "mono" });
  const payload = field("Payload template", { value: s.payload ?? "${value}", class: "mono" });
  const qos = field("QoS", {}, select([["0", "0"], ["1", "1"], ["2", "2"]], String(s.qos ?? 1)));
  const retain = checkbox("Retain", s.retain);

  const msg = h("div", {});
  const delBox = h("div", {});
  const form = h("form", { class: "card" },
    h("div", { class: "row" }, name.row, conn.row),
    h("div", { class: "row" }, topics.row, group.row, reset.row),
    h("div", { class: "row" }, mqttTopic.row, payload.row),
    h("p", { class: "hint" }, "Templates: ${key}, ${topic}, ${partition}, ${offset}, ${headers.NAME}, ${value}, ${value.path}, ${.} (the whole record)."),
    h("div", { class: "row" }, qos.row, h("div", { class: "btn-cell" }, retain.row)),
    msg,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, id ? "Save" : "Create"),
      id ? h("button", { type: "button", class: "danger", onclick: () => deleteFlow(delBox, "sources", "Source", id, () => go("sources")) }, "Delete") : null,
      h("a", { href: "#/sources" }, "Back to the sources")),
    delBox);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.replaceChildren();
    const b = {
      type: "kafka_consumer",
      connector: conn.input.value,
      topics: topics.input.value.split(",").map((t) => t.trim()).filter(Boolean),
      group_id: opt(group.input.value), offset_reset: reset.input.value,
      mqtt_topic: mqttTopic.input.value.trim(), payload: payload.input.value,
      qos: Number(qos.input.value), retain: retain.input.checked,
    };
    try {
      if (id) {
        await api("PUT", `/api/v5/sources/${enc(id)}`, b);
        msg.replaceChildren(h("p", { class: "ok-box", role: "status" }, `Source ${id} saved.`));
      } else {
        const r = await api("POST", "/api/v5/sources", { ...b, name: name.input.value.trim() });
        toast(`Source ${r.name} created.`);
        go("source", { id: r.name });
      }
    } catch (e) { showError(msg, e); }
  });

  main.append(h("h1", {}, id ? `Source ${id}` : "New Kafka source"));
  if (id) {
    const statusLine = h("p", { class: "status-line" });
    const cards = h("div", { class: "cards" });
    const lag = h("p", { class: "hint" });
    const mMsg = h("div", {});
    const load = async () => {
      const [x, m] = await Promise.all([
        api("GET", `/api/v5/sources/${enc(id)}`),
        api("GET", `/api/v5/sources/${enc(id)}/metrics`),
      ]);
      const mm = m.metrics || {};
      statusLine.replaceChildren("Status: ", status(x.status, x.status_reason), " · ", enabledText(x));
      cards.replaceChildren(...statCards([
        ["Received", fmt.num(mm.received)], ["Delivered", fmt.num(mm.delivered)], ["Failed", fmt.num(mm.failed)],
        ["Inflight", fmt.num(mm.inflight)], ["Lag", fmt.num(mm.lag)], ["Rate", fmt.rate(mm.rate)],
      ]));
      lag.textContent = `Lag by partition: ${lagText(mm.lag_by_partition)}`;
    };
    main.append(statusLine,
      h("section", { "aria-label": "metrics" },
        h("h2", {}, "Metrics"), cards, lag, mMsg,
        h("div", { class: "actions" }, h("button", {
          onclick: async () => {
            try {
              await api("PUT", `/api/v5/sources/${enc(id)}/metrics/reset`);
              toast("Metrics reset.");
              await load();
            } catch (e) { showError(mMsg, e); }
          },
        }, "Reset metrics"))),
      h("h2", {}, "Settings"));
    every(5000, () => load().catch(() => {}));
    await load();
  }
  main.append(form);
});
