// Rules: the list with metrics and enable/disable; a rule's page with the SQL editor (line
// numbers, the caret's line and column, SQL errors marked at their line and column), its
// actions (Kafka actions, console, inline republish), per-rule metrics and the test panel
// (EMQX's "Enable Test": POST /api/v5/rule_test).
import {
  api, page, every, go, h, field, select, table, toast, showError, fmt, withMetrics, changeTracker,
} from "../app.js";

const enc = encodeURIComponent;

/** "line L, column C" in an API message, or null. */
export function sqlPosition(message) {
  const m = /line (\d+), column (\d+)/.exec(message || "");
  return m ? { line: Number(m[1]), column: Number(m[2]) } : null;
}

/** How an action reference reads in a list. */
function actionText(a) {
  if (typeof a === "string") return a;
  if (a && a.function === "republish") {
    const args = a.args || {};
    return `republish to ${args.topic} (QoS ${args.qos ?? 0})`;
  }
  if (a && a.function === "console") return "console";
  return JSON.stringify(a);
}

/** A labelled checkbox: {row, input}. */
function checkbox(label, checked) {
  const input = h("input", { type: "checkbox", checked: !!checked });
  const id = `cb${Math.random().toString(36).slice(2, 8)}`;
  input.id = id;
  return { row: h("div", { class: "cb-row" }, input, h("label", { for: id }, label)), input };
}

/** Asks in place (no native dialog): shows the question with Yes/Cancel in `where`. */
function confirmIn(where, question, yesText, onYes) {
  const box = h("div", { class: "notice confirm", role: "alertdialog", "aria-label": question },
    h("p", {}, question),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "danger", onclick: async () => { box.remove(); await onYes(); } }, yesText),
      h("button", { type: "button", onclick: () => box.remove() }, "Cancel")));
  where.replaceChildren(box);
  box.querySelector("button").focus();
}

// ---- the SQL editor ----

/**
 * A monospace textarea with line numbers beside it and the caret's line/column below.
 * `mark(line, column, message)` shows an error at that place; typing clears it.
 */
function sqlEditor(label, value) {
  const ta = h("textarea", {
    class: "code sql-text", spellcheck: "false", wrap: "off", autocapitalize: "off",
    "aria-describedby": "sql-caret sql-mark",
  });
  ta.value = value || "";
  const gutter = h("pre", { class: "sql-gutter", "aria-hidden": "true" });
  const caret = h("div", { class: "sql-caret hint", id: "sql-caret" });
  const markBox = h("div", { id: "sql-mark" });
  let errLine = 0;

  function lines() { return ta.value.split("\n"); }
  function drawGutter() {
    const n = lines().length;
    gutter.replaceChildren(...Array.from({ length: n }, (_, i) =>
      h("span", { class: i + 1 === errLine ? "err-line" : null }, `${i + 1}\n`)));
    gutter.scrollTop = ta.scrollTop;
  }
  function drawCaret() {
    const before = ta.value.slice(0, ta.selectionStart).split("\n");
    caret.textContent = `Line ${before.length}, column ${before[before.length - 1].length + 1}`;
  }
  function clear() {
    if (errLine) { errLine = 0; markBox.replaceChildren(); }
  }
  ta.addEventListener("input", () => { clear(); drawGutter(); drawCaret(); });
  ta.addEventListener("scroll", () => { gutter.scrollTop = ta.scrollTop; });
  for (const ev of ["keyup", "click", "focus", "select"]) ta.addEventListener(ev, drawCaret);

  const f = field(label, {}, ta);
  const row = h("div", { class: "field sql-field" },
    f.row.querySelector("label"),
    h("div", { class: "sql-editor" }, gutter, ta),
    caret, markBox);
  drawGutter();
  drawCaret();

  return {
    row,
    input: ta,
    get value() { return ta.value; },
    /** Marks `message` at its line and column (if it names one); returns whether it did. */
    mark(message) {
      const pos = sqlPosition(message);
      if (!pos) return false;
      const all = lines();
      errLine = Math.min(Math.max(pos.line, 1), all.length);
      const text = all[errLine - 1] || "";
      const col = Math.max(pos.column, 1);
      markBox.replaceChildren(h("div", { class: "error sql-error", role: "alert" },
        h("strong", {}, `SQL error at line ${pos.line}, column ${pos.column}`),
        h("div", {}, message),
        h("pre", { class: "sql-pointer" }, `${String(errLine).padStart(3)} | ${text}\n    | ${" ".repeat(col - 1)}^`)));
      drawGutter();
      let offset = 0;
      for (let i = 0; i < errLine - 1; i++) offset += all[i].length + 1;
      offset += Math.min(col - 1, text.length);
      ta.setSelectionRange(offset, offset);
      drawCaret();
      return true;
    },
    clear,
  };
}

// ---- the list ----

page("rules", "Rules", async (main) => {
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  const msg = h("div", {});
  main.append(
    h("h1", {}, "Rules"),
    h("div", { class: "actions" }, h("button", { class: "primary", onclick: () => go("rule") }, "New rule")),
    msg, body);

  const changed = changeTracker();
  async function load() {
    const rules = await withMetrics("/api/v5/rules", (x) => x.id);
    if (!changed(rules)) return;
    body.replaceChildren(table([
      ["ID", (x) => h("a", { href: `#/rule?id=${enc(x.id)}` }, x.id)],
      ["SQL", (x) => h("code", { class: "sql-short" }, x.sql)],
      ["Actions", (x) => (x.actions || []).length ? (x.actions || []).map(actionText).join(", ") : "none"],
      ["Status", (x) => h("span", { class: `status st-${x.enable ? "enabled" : "disabled"}` }, x.enable ? "enabled" : "disabled")],
      ["Matched", (x) => fmt.num(x._m.matched)],
      ["Passed", (x) => fmt.num(x._m.passed)],
      ["Failed", (x) => fmt.num(x._m.failed)],
      ["Rate", (x) => fmt.rate(x._m["matched.rate"])],
      ["", (x) => h("div", { class: "row-actions" },
        h("button", {
          onclick: async () => {
            try {
              await api("PUT", `/api/v5/rules/${enc(x.id)}`, { enable: !x.enable });
              toast(`Rule ${x.id} ${x.enable ? "disabled" : "enabled"}.`);
              await load();
            } catch (e) { showError(msg, e); }
          },
          "aria-label": `${x.enable ? "Disable" : "Enable"} rule ${x.id}`,
        }, x.enable ? "Disable" : "Enable"),
        h("button", { onclick: () => go("rule", { id: x.id }), "aria-label": `Edit rule ${x.id}` }, "Edit"))],
    ], rules, "No rules yet: create one with New rule."));
  }
  every(5000, () => load().catch(() => {}));
  await load();
}, { nav: "Integration" });

// ---- one rule ----

page("rule", "Rule", async (main, params) => {
  const id = params.id;
  let rule = { sql: 'SELECT\n  *\nFROM\n  "t/#"', actions: [], enable: true, description: "" };
  if (id) rule = await api("GET", `/api/v5/rules/${enc(id)}`);
  const [kafka, events] = await Promise.all([
    api("GET", "/api/v5/actions?limit=1000").then((r) => r.data || [], () => []),
    api("GET", "/api/v5/rule_events").then((r) => r || [], () => []),
  ]);
  let actions = [...(rule.actions || [])];

  const msg = h("div", {});
  const name = field("Rule ID", { value: id || "", placeholder: "generated when empty", readonly: !!id, autocomplete: "off" });
  const desc = field("Description", { value: rule.description || "" });
  const enabled = checkbox("Enabled", rule.enable !== false);
  const sql = sqlEditor("SQL", rule.sql);

  // Actions: the current list and ways to add one.
  const actionList = h("div", {});
  function drawActions() {
    actionList.replaceChildren(actions.length
      ? h("ul", { class: "action-list" }, actions.map((a, i) => h("li", {},
        h("span", {}, actionText(a)), " ",
        h("button", {
          type: "button", class: "link", "aria-label": `Remove action ${actionText(a)}`,
          onclick: () => { actions.splice(i, 1); drawActions(); },
        }, "Remove"))))
      : h("p", { class: "empty" }, "No actions: outputs are only counted."));
  }
  drawActions();
  const pick = field("Action", {}, select([
    ...kafka.map((a) => [`kafka:${a.name}`, `Kafka: ${a.name} (topic ${a.topic})`]),
    ["console", "Console (log the output)"],
  ], kafka.length ? `kafka:${kafka[0].name}` : "console"));
  const addPicked = h("button", {
    type: "button",
    onclick: () => {
      const v = pick.input.value;
      if (!actions.some((a) => a === v || (v.startsWith("kafka:") && a === `kafka_producer:${v.slice(6)}`))) actions.push(v);
      drawActions();
    },
  }, "Add action");
  const rpTopic = field("Republish topic", { placeholder: "alerts/${clientid}" });
  const rpPayload = field("Republish payload", { value: "${payload}" });
  const rpQos = field("Republish QoS", {}, select([["0", "0"], ["1", "1"], ["2", "2"]], "0"));
  const addRepublish = h("button", {
    type: "button",
    onclick: () => {
      if (!rpTopic.input.value.trim()) { toast("A republish needs a topic.", "error"); return; }
      actions.push({ function: "republish", args: { topic: rpTopic.input.value.trim(), payload: rpPayload.input.value, qos: Number(rpQos.input.value) } });
      drawActions();
    },
  }, "Add republish");

  const delBox = h("div", {});
  const form = h("form", { class: "card" },
    h("div", { class: "row" }, name.row, desc.row),
    enabled.row,
    sql.row,
    h("h2", {}, "Actions"),
    actionList,
    h("div", { class: "row" }, pick.row, h("div", { class: "btn-cell" }, addPicked)),
    h("p", { class: "hint" }, kafka.length ? "Another Kafka action? " : "No Kafka action yet? ",
      h("a", { href: "#/action" }, "Create a Kafka action"), " (save the rule first)."),
    h("fieldset", { class: "republish" }, h("legend", {}, "Republish as an MQTT message"),
      h("div", { class: "row" }, rpTopic.row, rpPayload.row, rpQos.row, h("div", { class: "btn-cell" }, addRepublish))),
    msg,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Save"),
      id ? h("button", {
        type: "button", class: "danger",
        onclick: () => confirmIn(delBox, `Delete rule ${id}? Its counters go with it.`, "Yes, delete", async () => {
          try {
            await api("DELETE", `/api/v5/rules/${enc(id)}`);
            toast(`Rule ${id} deleted.`);
            go("rules");
          } catch (e) { showError(msg, e); }
        }),
      }, "Delete") : null,
      h("a", { href: "#/rules" }, "Back to the rules")),
    delBox);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.replaceChildren();
    sql.clear();
    const body = { sql: sql.value, description: desc.input.value, enable: enabled.input.checked, actions };
    try {
      if (id) {
        await api("PUT", `/api/v5/rules/${enc(id)}`, body);
        msg.replaceChildren(h("p", { class: "ok-box", role: "status" }, `Rule ${id} saved.`));
      } else {
        if (name.input.value.trim()) body.id = name.input.value.trim();
        const r = await api("POST", "/api/v5/rules", body);
        toast(`Rule ${r.id} created.`);
        go("rule", { id: r.id });
      }
    } catch (e) {
      if (!sql.mark(e.message)) showError(msg, e);
      else msg.replaceChildren(h("p", { class: "error", role: "alert" }, "Not saved: the SQL has an error (marked above)."));
    }
  });

  main.append(h("h1", {}, id ? `Rule ${id}` : "New rule"));

  if (id) {
    const cards = h("div", { class: "cards" });
    const metricsMsg = h("div", {});
    const all = h("div", {});
    main.append(h("section", { "aria-label": "metrics" },
      h("h2", {}, "Metrics"),
      h("p", { class: "hint" }, "Refreshed every 5 seconds."),
      cards, all, metricsMsg,
      h("div", { class: "actions" }, h("button", {
        onclick: async () => {
          try {
            await api("PUT", `/api/v5/rules/${enc(id)}/metrics/reset`);
            toast("Metrics reset.");
            await loadMetrics();
          } catch (e) { showError(metricsMsg, e); }
        },
      }, "Reset metrics"))));
    async function loadMetrics() {
      const m = (await api("GET", `/api/v5/rules/${enc(id)}/metrics`)).metrics || {};
      cards.replaceChildren(...[
        ["Matched", fmt.num(m.matched)], ["Passed", fmt.num(m.passed)], ["Failed", fmt.num(m.failed)],
        ["No result", fmt.num(m["failed.no_result"])], ["Exceptions", fmt.num(m["failed.exception"])],
        ["Actions run", fmt.num(m["actions.total"])], ["Actions succeeded", fmt.num(m["actions.success"])],
        ["Actions failed", fmt.num(m["actions.failed"])],
        ["Rate", fmt.rate(m["matched.rate"])], ["Rate (5 min)", fmt.rate(m["matched.rate.last5m"])],
        ["Max rate", fmt.rate(m["matched.rate.max"])],
      ].map(([k, v]) => h("div", { class: "stat", "data-metric": k },
        h("div", { class: "label" }, k), h("div", { class: "value" }, v))));
    }
    every(5000, () => loadMetrics().catch(() => {}));
    await loadMetrics();
    main.append(h("h2", {}, "Settings"));
  }
  main.append(form, testPanel(sql, events));
});

// ---- the test panel ----

function testPanel(sql, events) {
  const types = [["message_publish", "Message publish"]];
  for (const e of events) {
    if (e.event_type && e.event_type !== "message_publish") {
      types.push([e.event_type, `${(e.title && e.title.en) || e.event_type} ($events/${e.event_type})`]);
    }
  }
  const columnsOf = (t) => {
    const e = events.find((x) => x.event_type === t);
    return e && Array.isArray(e.columns) ? e.columns : null;
  };
  const evType = field("Event type", {}, select(types, "message_publish"));
  // Until the user types a topic, it follows the SQL's FROM (when that is a plain topic).
  const topicFromSql = () => {
    const m = /FROM\s+"([^"]*)"/i.exec(sql.value || "");
    if (!m || m[1].startsWith("$")) return null;
    return m[1].split("/").map((l) => (l === "#" || l === "+" ? "test" : l)).join("/");
  };
  const topic = field("Topic", { value: topicFromSql() || "t/1" });
  let topicTouched = false;
  topic.input.addEventListener("input", () => { topicTouched = true; });
  sql.input.addEventListener("input", () => {
    const t = topicFromSql();
    if (!topicTouched && t) topic.input.value = t;
  });
  const payload = field("Payload", {}, h("textarea", { class: "code test-payload", spellcheck: "false" }));
  payload.input.value = '{"msg": "hello"}';
  const clientid = field("Client ID", { value: "c_emqx" });
  const username = field("Username", { value: "u_emqx" });
  const qos = field("QoS", {}, select([["0", "0"], ["1", "1"], ["2", "2"]], "1"));
  const out = h("div", { class: "test-result", "aria-live": "polite" });

  const run = h("button", {
    type: "button", class: "primary",
    onclick: async () => {
      sql.clear();
      const t = evType.input.value;
      const ctx = { event_type: t, topic: topic.input.value, payload: payload.input.value, clientid: clientid.input.value, username: username.input.value, qos: Number(qos.input.value) };
      const cols = columnsOf(t);
      if (cols && t !== "message_publish") {
        for (const k of Object.keys(ctx)) if (k !== "event_type" && !cols.includes(k)) delete ctx[k];
      }
      out.replaceChildren(h("p", { class: "loading" }, "Running…"));
      try {
        const r = await api("POST", "/api/v5/rule_test", { sql: sql.value, context: ctx });
        out.replaceChildren(h("h3", {}, "Output"), h("pre", { class: "test-output" }, fmt.json(r)));
      } catch (e) {
        if (e.status === 412) {
          out.replaceChildren(h("p", { class: "notice test-nomatch", role: "status" }, h("strong", {}, "No match: "), e.message));
        } else if (e.status === 400 && sql.mark(e.message)) {
          out.replaceChildren(h("p", { class: "error", role: "alert" }, /^SQL error/i.test(e.message) ? e.message : `SQL error: ${e.message}`));
        } else {
          showError(out, e);
        }
      }
    },
  }, "Run test");
  const onType = () => {
    const t = evType.input.value;
    const cols = columnsOf(t);
    const show = (f, k) => { f.row.hidden = t !== "message_publish" && !!cols && !cols.includes(k); };
    show(topic, "topic"); show(payload, "payload"); show(qos, "qos");
    show(clientid, "clientid"); show(username, "username");
  };
  evType.input.addEventListener("change", onType);

  return h("section", { class: "card test-panel", "aria-label": "test the SQL" },
    h("h2", {}, "Test the SQL"),
    h("p", { class: "hint" }, "Runs the SQL above on this input without publishing anything."),
    h("div", { class: "row" }, evType.row, topic.row, qos.row),
    h("div", { class: "row" }, clientid.row, username.row),
    payload.row,
    h("div", { class: "actions" }, run),
    out);
}

