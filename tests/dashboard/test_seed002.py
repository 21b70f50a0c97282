"""Seed 002 ("Stream MQTT data into Apache Kafka") entirely in the browser: the Kafka connector
and its Test button, the rule SQL tried in the test panel (output, no match, a typo shown at
its line and column), the Kafka action with the seed's key and value templates, attached to
the rule; then MQTT publishes land in Kafka and the action's page shows its success count
rising. Also the Integration pages' delete-in-use flow, sources, and phone width."""

import json
import re
import socket

from playwright.sync_api import expect

SQL = ('SELECT\n  timestamp,\n  clientid,\n  payload.temp as temp,\n  payload.hum as hum\n'
       'FROM\n  "temp_hum/emqx"')
# Line 4 is misspelt: "payload.temp az temp" is not SQL.
TYPO = ('SELECT\n  timestamp,\n  clientid,\n  payload.temp az temp,\n  payload.hum as hum\n'
        'FROM\n  "temp_hum/emqx"')
VALUE = '{"temp": ${temp}, "hum": ${hum}}'


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(page, label):
    return page.locator(f'[data-metric="{label}"] .value')


def checked_shot(screenshot):
    """The conftest's screenshot, after checking that the page shows no stray values."""
    def shot(page, name):
        text = page.locator("main").inner_text()
        for bad in ("null", "undefined", "[object", "NaN"):
            assert bad not in text, f"{name}: {bad!r} on the page"
        return screenshot(page, name)
    return shot


def test_seed002_entirely_in_the_browser(admin_page, kafka, admin_api, mqtt, console, screenshot):
    page = admin_page
    console.allow(r"status of 400 .*/api/v5/connectors_probe",
                  "the Test button against a closed port is answered 400: the test checks it")
    console.allow(r"status of 400 .*/api/v5/rule_test",
                  "the SQL typo is answered 400 with its line and column: the test checks it")
    console.allow(r"status of 412 .*/api/v5/rule_test",
                  "a test input that does not match is answered 412: the test checks it")
    console.allow(r"status of 400 .*/api/v5/rules",
                  "saving the SQL typo is refused with 400: the test checks it")
    kafka.create_topic("emqx")
    screenshot = checked_shot(screenshot)

    # ---- the connector, with its Test button
    page.get_by_role("link", name="Connectors").first.click()
    expect(page.locator("h1")).to_have_text("Connectors")
    page.get_by_role("button", name="New connector").click()
    expect(page.locator("h1")).to_have_text("New connector")
    page.get_by_label("Name", exact=True).fill("my_kafkaserver")
    bad = f"127.0.0.1:{closed_port()}"
    page.get_by_label("Bootstrap hosts").fill(bad)
    page.get_by_role("button", name="Test").click()
    expect(page.locator(".probe-result [role=alert]")).to_contain_text(f"connection refused: {bad}")
    page.get_by_label("Bootstrap hosts").fill(kafka.bootstrap)
    page.get_by_role("button", name="Test").click()
    expect(page.locator(".probe-result")).to_contain_text("Connected")
    screenshot(page, "connector-new")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"#/connector\?id=my_kafkaserver"))
    expect(page.locator(".status-line")).to_contain_text("connected", timeout=20_000)
    screenshot(page, "connector")
    page.goto("/#/connectors")
    row = page.locator("tr", has_text="my_kafkaserver")
    expect(row).to_contain_text(kafka.bootstrap)
    expect(row.locator("td").nth(2)).to_have_text(re.compile("connected"))
    screenshot(page, "connectors")

    # ---- the rule, tried in the test panel
    page.get_by_role("link", name="Rules").first.click()
    expect(page.locator("h1")).to_have_text("Rules")
    page.get_by_role("button", name="New rule").click()
    expect(page.locator("h1")).to_have_text("New rule")
    page.get_by_label("Rule ID").fill("temp_hum")
    page.get_by_label("Description").fill("seed 002: temperature and humidity to Kafka")
    sql = page.get_by_label("SQL", exact=True)
    sql.fill(SQL)
    expect(page.locator(".sql-gutter")).to_contain_text("7")
    expect(page.get_by_label("Topic", exact=True)).to_have_value("temp_hum/emqx")
    page.get_by_label("Payload", exact=True).fill('{"temp": 23.5, "hum": 41.2}')
    page.get_by_label("Client ID").fill("c_emqx")
    page.get_by_role("button", name="Run test").click()
    out = page.locator(".test-output")
    expect(out).to_contain_text('"temp": 23.5')
    result = json.loads(out.text_content())
    assert result["temp"] == 23.5 and result["hum"] == 41.2 and result["clientid"] == "c_emqx", result
    assert "timestamp" in result, result

    # A topic the FROM does not match: the reason, not an output.
    page.get_by_label("Topic", exact=True).fill("other/topic")
    page.get_by_role("button", name="Run test").click()
    expect(page.locator(".test-nomatch")).to_contain_text("No match")
    page.get_by_label("Topic", exact=True).fill("temp_hum/emqx")

    # A typo: the error names line 4, the gutter marks it, the caret goes there.
    sql.fill(TYPO)
    page.get_by_role("button", name="Run test").click()
    mark = page.locator(".sql-error")
    expect(mark).to_contain_text(re.compile(r"line 4, column \d+"))
    expect(page.locator(".sql-gutter .err-line")).to_have_text("4")
    expect(page.locator(".sql-caret")).to_contain_text("Line 4, column")
    column = int(re.search(r"line 4, column (\d+)", mark.text_content()).group(1))
    pointer = page.locator(".sql-pointer").text_content().split("\n")
    assert pointer[1].index("^") - pointer[0].index("|") == column + 1, pointer
    screenshot(page, "rule-sql-error")
    # Saving it is refused the same way, and nothing is created.
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".sql-error")).to_contain_text("line 4")
    assert admin_api("GET", "/api/v5/rules/temp_hum").status == 404

    # Fixed (typing clears the mark), tested again, saved.
    sql.fill(SQL)
    expect(page.locator(".sql-error")).to_have_count(0)
    page.get_by_role("button", name="Run test").click()
    expect(out).to_contain_text('"hum": 41.2')
    screenshot(page, "rule-new-tested")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"#/rule\?id=temp_hum"))
    expect(page.locator("h1")).to_have_text("Rule temp_hum")

    # ---- the Kafka action with the seed's key and value
    page.get_by_role("link", name="Actions").first.click()
    expect(page.locator("h1")).to_have_text("Actions")
    page.get_by_role("button", name="New action").click()
    expect(page.locator("h1")).to_have_text("New Kafka action")
    page.get_by_label("Name", exact=True).fill("temp_hum_kafka")
    page.get_by_label("Connector").select_option("my_kafkaserver")
    page.get_by_label("Kafka topic").fill("emqx")
    page.get_by_label("Message key").fill("${clientid}")
    page.get_by_label("Message value").fill(VALUE)
    page.get_by_label("Query mode").select_option("sync")
    screenshot(page, "action-new")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"#/action\?id=temp_hum_kafka"))
    a = admin_api("GET", "/api/v5/actions/temp_hum_kafka").body
    assert (a["connector"], a["topic"], a["key"], a["value"], a["query_mode"]) == \
        ("my_kafkaserver", "emqx", "${clientid}", VALUE, "sync"), a

    # ---- attached to the rule
    page.goto("/#/rule?id=temp_hum")
    page.get_by_label("Action", exact=True).select_option("kafka:temp_hum_kafka")
    page.get_by_role("button", name="Add action").click()
    expect(page.locator(".action-list")).to_contain_text("kafka:temp_hum_kafka")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".ok-box")).to_contain_text("saved")
    assert admin_api("GET", "/api/v5/rules/temp_hum").body["actions"] == ["kafka:temp_hum_kafka"]

    # ---- MQTT publishes land in Kafka; the action's page shows success rising
    page.goto("/#/action?id=temp_hum_kafka")
    expect(page.locator(".status-line")).to_contain_text("connected", timeout=20_000)
    expect(metric(page, "Success")).to_have_text("0")
    c = mqtt("c_emqx")
    for i in range(5):
        mqtt.publish(c, "temp_hum/emqx", json.dumps({"temp": 27.5 + i, "hum": 41.8}), qos=1)
    records = kafka.read("emqx", 5)
    assert len(records) == 5, records
    for i, r in enumerate(records):
        assert r.key == "c_emqx", r
        v = json.loads(r.value)
        assert v == {"temp": 27.5 + i, "hum": 41.8}, r
    expect(metric(page, "Success")).to_have_text("5", timeout=15_000)
    expect(metric(page, "Matched")).to_have_text("5")
    expect(metric(page, "Failed")).to_have_text("0")
    for i in range(5):
        mqtt.publish(c, "temp_hum/emqx", json.dumps({"temp": 30 + i, "hum": 40}), qos=1)
    expect(metric(page, "Success")).to_have_text("10", timeout=15_000)
    assert len(kafka.read("emqx", 10)) == 10
    expect(metric(page, "Kafka latency p50")).not_to_have_text("–")
    screenshot(page, "action")

    page.goto("/#/actions")
    row = page.locator("tr", has_text="temp_hum_kafka")
    expect(row).to_contain_text("10")
    screenshot(page, "actions")

    # The rule's own statistics, and its list.
    page.goto("/#/rule?id=temp_hum")
    expect(metric(page, "Matched")).to_have_text("10")
    expect(metric(page, "Passed")).to_have_text("10")
    screenshot(page, "rule")
    page.get_by_role("button", name="Reset metrics").click()
    expect(metric(page, "Matched")).to_have_text("0")
    page.goto("/#/rules")
    expect(page.locator("tr", has_text="temp_hum")).to_contain_text("kafka:temp_hum_kafka")
    screenshot(page, "rules")


def test_integration_lists_toggle_delete_in_use_and_sources(admin_page, admin_api, console,
                                                            screenshot, new_page, login,
                                                            admin_password):
    page = admin_page
    screenshot = checked_shot(screenshot)
    console.allow(r"status of 409 .*/api/v5/connectors/",
                  "deleting a connector an action uses is answered 409: the test checks it")
    # Objects of its own (the Kafka cluster is not needed: a closed port is fine here).
    hosts = f"127.0.0.1:{closed_port()}"
    assert admin_api("POST", "/api/v5/connectors",
                     {"type": "kafka_producer", "name": "unused_cluster", "bootstrap_hosts": hosts}).status == 201
    assert admin_api("POST", "/api/v5/actions",
                     {"type": "kafka_producer", "name": "to_unused", "connector": "unused_cluster",
                      "topic": "t"}).status == 201
    assert admin_api("POST", "/api/v5/rules",
                     {"id": "toggled", "sql": 'SELECT * FROM "toggle/#"', "actions": ["console"]}).status == 201

    # Enable/disable from the rules list.
    page.goto("/#/rules")
    row = page.locator("tr", has_text="toggled")
    expect(row.locator(".status")).to_have_text("enabled")
    row.get_by_role("button", name="Disable").click()
    expect(row.locator(".status")).to_have_text("disabled")
    assert admin_api("GET", "/api/v5/rules/toggled").body["enable"] is False
    row.get_by_role("button", name="Enable").click()
    expect(row.locator(".status")).to_have_text("enabled")

    # The test panel also takes events: client_connected from the rule_events list.
    page.goto("/#/rule?id=toggled")
    page.get_by_label("SQL", exact=True).fill('SELECT clientid, username FROM "$events/client_connected"')
    page.get_by_label("Event type").select_option("client_connected")
    expect(page.get_by_label("Payload", exact=True)).to_be_hidden()
    page.get_by_label("Client ID").fill("dev-42")
    page.get_by_label("Username").fill("alice")
    page.get_by_role("button", name="Run test").click()
    expect(page.locator(".test-output")).to_contain_text("dev-42")
    assert json.loads(page.locator(".test-output").text_content()) == {"clientid": "dev-42", "username": "alice"}

    # Editing an action through its form changes only what the form shows.
    page.goto("/#/action?id=to_unused")
    expect(page.locator("h1")).to_have_text("Action to_unused")
    page.get_by_label("Kafka topic").fill("t-${payload.site}")
    page.get_by_label("Headers (a template rendering an object)").fill("${pub_props.'User-Property'}")
    page.get_by_label("Compression").select_option("lz4")
    page.get_by_label("Required acks").select_option("leader")
    page.get_by_label("Max queue messages").fill("500")
    page.get_by_label("When the queue is full").select_option("drop_newest")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".ok-box")).to_contain_text("saved")
    a = admin_api("GET", "/api/v5/actions/to_unused").body
    assert (a["topic"], a["headers"], a["compression"], a["required_acks"], a["idempotence"],
            a["max_queue_messages"], a["overflow"], a["connector"]) == \
        ("t-${payload.site}", "${pub_props.'User-Property'}", "lz4", "leader", False, 500,
         "drop_newest", "unused_cluster"), a

    # Editing a connector: SASL and TLS settings reach the API; clearing them removes them.
    page.goto("/#/connector?id=unused_cluster")
    expect(page.locator("h1")).to_have_text("Connector unused_cluster")
    page.get_by_label("SASL mechanism").select_option("scram_sha_512")
    page.get_by_label("SASL username").fill("alice")
    page.get_by_label("SASL password").fill("s3cret")
    page.get_by_label("Enable TLS").check()
    page.get_by_label("Verify the brokers' certificates").uncheck()
    page.get_by_label("Connect timeout").fill("3s")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".ok-box")).to_contain_text("saved")
    c = admin_api("GET", "/api/v5/connectors/unused_cluster").body
    assert c["authentication"] == {"mechanism": "scram_sha_512", "username": "alice", "password": "s3cret"}, c
    assert (c["ssl"]["enable"], c["ssl"]["verify"], c["connect_timeout"]) == (True, False, "3s"), c
    page.get_by_label("SASL mechanism").select_option("none")
    page.get_by_label("Enable TLS").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".ok-box")).to_contain_text("saved")
    c = admin_api("GET", "/api/v5/connectors/unused_cluster").body
    assert c["authentication"] is None and c["ssl"]["enable"] is False, c

    # A connector that cannot connect says so, with a reason, as text.
    page.goto("/#/connectors")
    row = page.locator("tr", has_text="unused_cluster")
    expect(row.locator("td").nth(2)).to_have_text(re.compile(r"^(connecting|disconnected)"), timeout=20_000)

    # Deleting it while an action uses it: 409 names the action; cascade deletes both.
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Yes, delete").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("in use")
    expect(alert).to_contain_text("to_unused")
    assert admin_api("GET", "/api/v5/connectors/unused_cluster").status == 200
    page.get_by_role("button", name="Delete it and everything that uses it").click()
    expect(page.locator("tr", has_text="unused_cluster")).to_have_count(0)
    assert admin_api("GET", "/api/v5/actions/to_unused").status == 404

    # Sources: the list, the form, and one created through it.
    assert admin_api("POST", "/api/v5/connectors",
                     {"type": "kafka_consumer", "name": "src_cluster", "bootstrap_hosts": hosts}).status == 201
    page.get_by_role("link", name="Sources").first.click()
    expect(page.locator("h1")).to_have_text("Sources")
    page.get_by_role("button", name="New source").click()
    page.get_by_label("Name", exact=True).fill("commands")
    page.get_by_label("Connector").select_option("src_cluster")
    page.get_by_label("Kafka topics (comma-separated)").fill("vehicle-commands, other-commands")
    page.get_by_label("Offset reset").select_option("earliest")
    page.get_by_label("MQTT topic template").fill("vehicles/${key}/commands")
    page.get_by_label("QoS").select_option("1")
    screenshot(page, "source-new")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"#/source\?id=commands"))
    s = admin_api("GET", "/api/v5/sources/commands").body
    assert s["topics"] == ["vehicle-commands", "other-commands"], s
    assert (s["mqtt_topic"], s["offset_reset"], s["qos"]) == ("vehicles/${key}/commands", "earliest", 1), s
    expect(metric(page, "Received")).to_have_text("0")
    screenshot(page, "source")
    page.goto("/#/sources")
    row = page.locator("tr", has_text="commands")
    expect(row).to_contain_text("vehicle-commands, other-commands")
    expect(row.locator("td").nth(4)).to_have_text(re.compile(r"connecting|disconnected|connected|stopped"))
    screenshot(page, "sources")

    # Phone width: the rule editor and the actions list still work.
    phone = new_page(390, 844)
    login(phone, "admin", admin_password)
    phone.goto("/#/rule?id=toggled")
    expect(phone.locator("h1")).to_have_text("Rule toggled")
    expect(phone.get_by_label("SQL", exact=True)).to_be_visible()
    expect(phone.get_by_role("button", name="Run test")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    screenshot(phone, "rule-phone")
    phone.goto("/#/actions")
    expect(phone.locator("h1")).to_have_text("Actions")
    screenshot(phone, "actions-phone")

    for path in ("/api/v5/sources/commands", "/api/v5/connectors/src_cluster", "/api/v5/rules/toggled"):
        admin_api("DELETE", path)
