// Tools: publish a message as if a client had (POST /api/v5/publish), with QoS, retain,
// the payload's encoding and MQTT 5 user properties.
import { api, page, h, field, select, showError } from "../app.js";

page("publish", "Publish", (main) => {
  let propSeq = 0;
  const topic = field("Topic", { name: "topic", required: true, autocomplete: "off", placeholder: "e.g. sensors/room-1/temp" });
  const payload = field("Payload", { name: "payload" }, h("textarea", { class: "code", name: "payload", rows: 6 }));
  const encoding = field("Payload encoding", { name: "payload_encoding" },
    select([["plain", "plain text"], ["base64", "base64"]], "plain"));
  const qos = field("QoS", { name: "qos" }, select([["0", "0 (at most once)"], ["1", "1 (at least once)"], ["2", "2 (exactly once)"]], "0"));
  const retainId = "publish-retain";
  const retain = h("input", { type: "checkbox", id: retainId, name: "retain" });
  const clientid = field("Client ID (optional)", { name: "clientid", autocomplete: "off" });

  const props = h("div", { class: "props", id: "user-properties" });
  const noProps = h("p", { class: "hint" }, "No user properties.");
  function syncEmpty() {
    noProps.hidden = props.children.length > 0;
  }
  function addProp(k = "", v = "") {
    const n = ++propSeq;
    const key = field(`Key ${n}`, { name: "prop-key", value: k, autocomplete: "off" });
    const val = field(`Value ${n}`, { name: "prop-value", value: v, autocomplete: "off" });
    const row = h("div", { class: "row prop" }, key.row, val.row);
    row.append(h("div", { class: "field" },
      h("button", { type: "button", onclick: () => { row.remove(); syncEmpty(); } }, `Remove property ${n}`)));
    props.append(row);
    syncEmpty();
    key.input.focus();
  }

  const result = h("div", { id: "publish-result", "aria-live": "polite" });
  const send = h("button", { type: "submit", class: "primary" }, "Publish");
  const form = h("form", { class: "card", id: "publish-form" },
    topic.row, payload.row,
    h("div", { class: "row" }, encoding.row, qos.row, clientid.row),
    h("div", { class: "field check" }, retain, h("label", { for: retainId }, "Retain (the broker keeps the last message of the topic)")),
    h("fieldset", { class: "props-set" }, h("legend", {}, "User properties (MQTT 5)"), noProps, props,
      h("button", { type: "button", onclick: () => addProp() }, "Add user property")),
    h("div", { class: "actions" }, send));

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    result.replaceChildren();
    const user = {};
    for (const row of props.querySelectorAll(".prop")) {
      const [k, v] = row.querySelectorAll("input");
      if (!k.value && !v.value) continue;
      if (!k.value) {
        showError(result, new Error("A user property needs a key."));
        k.focus();
        return;
      }
      if (k.value in user) {
        showError(result, new Error(`The user property ${k.value} is given twice.`));
        k.focus();
        return;
      }
      user[k.value] = v.value;
    }
    if (!topic.input.value) {
      showError(result, new Error("A topic is needed."));
      topic.input.focus();
      return;
    }
    const body = {
      topic: topic.input.value,
      payload: payload.input.value,
      payload_encoding: encoding.input.value,
      qos: Number(qos.input.value),
      retain: retain.checked,
      properties: { user_properties: user },
    };
    if (body.payload_encoding === "base64") {
      try {
        atob(body.payload.replace(/\s+/g, ""));
        body.payload = body.payload.replace(/\s+/g, "");
      } catch {
        showError(result, new Error("The payload is not valid base64."));
        return;
      }
    }
    if (clientid.input.value.trim()) body.clientid = clientid.input.value.trim();
    send.disabled = true;
    try {
      const r = await api("POST", "/api/v5/publish", body);
      const none = r && r.reason_code === 16;
      result.replaceChildren(h("div", { class: none ? "notice" : "ok-box", role: "status" },
        h("strong", {}, none ? "Published, but no matching subscribers" : "Published"),
        ` to ${body.topic}${body.retain ? " (retained)" : ""}. Message id: `, h("code", {}, (r && r.id) || "–"),
        r && r.message && !none ? ` (${r.message})` : ""));
    } catch (e) {
      showError(result, e);
    } finally {
      send.disabled = false;
    }
  });

  main.append(h("h1", {}, "Publish"),
    h("p", { class: "hint" }, "Publishes one message as if a client had: subscribers, rules and Kafka actions see it."),
    form, result);
  topic.input.focus();
}, { nav: "Tools" });
