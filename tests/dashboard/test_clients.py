"""The Overview, Clients (list, details, kick), Subscriptions, Topics, Retained and Publish pages,
against a real Ferry and real MQTT clients (paho), in headless Chromium."""

from __future__ import annotations

import re
import threading
import time

from playwright.sync_api import Page, expect

from conftest import do_login


def wait_until(f, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = f()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def subscribed(admin_api, clientid: str, topic: str) -> None:
    def seen():
        r = admin_api("GET", f"/api/v5/subscriptions?clientid={clientid}")
        return r.status == 200 and any(s["topic"] == topic for s in r.body["data"])
    wait_until(seen, what=f"{clientid}'s subscription to {topic}")


def stat_value(page: Page, box: str, label: str):
    return page.locator(f"#{box} .stat").filter(
        has=page.locator(".label", has_text=re.compile(f"^{re.escape(label)}$"))).locator(".value")


def test_client_is_found_detailed_and_kicked(admin_page: Page, mqtt, admin_api, screenshot):
    page = admin_page
    c = mqtt("dash-kick-me", version=5, username="kicked-user")
    # A kicked client must stay away: paho's network loop would reconnect after a second.
    c.reconnect_delay_set(min_delay=120, max_delay=120)
    gone = threading.Event()
    reasons = []

    def on_disconnect(_c, _u, _flags, reason, _props):
        reasons.append(reason)
        gone.set()

    c.on_disconnect = on_disconnect
    c.subscribe("dash/kick/#", qos=1)
    subscribed(admin_api, "dash-kick-me", "dash/kick/#")
    mqtt("dash-bystander", version=4)

    page.get_by_role("link", name="Clients", exact=True).click()
    expect(page.locator("main h1")).to_have_text("Clients")
    page.get_by_label("Client ID contains").fill("dash-kick")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"#/clients\?.*like_clientid=dash-kick"))
    rows = page.locator("#clients-list tbody tr")
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_contain_text("kicked-user")
    expect(row).to_contain_text("MQTT 5.0")
    expect(row).to_contain_text("connected")
    expect(page.locator("#clients-list")).to_contain_text("Page 1 of 1 (1 in all)")
    screenshot(page, "clients")

    page.get_by_role("link", name="dash-kick-me").click()
    expect(page.locator("main h1")).to_have_text("Client dash-kick-me")
    subs = page.locator("#client-subscriptions")
    expect(subs.get_by_role("columnheader", name="Topic filter")).to_be_visible()
    expect(subs.locator("tbody tr")).to_have_count(1)
    expect(subs.locator("tbody tr").first).to_contain_text("dash/kick/#")
    details = page.locator("#client-details")
    expect(details.get_by_role("row", name=re.compile(r"^Username kicked-user$"))).to_be_visible()
    expect(details.get_by_role("row", name=re.compile(r"^Protocol version 5$"))).to_be_visible()
    expect(page.locator("#client-queue")).to_have_text(re.compile(r"^0 of "))
    expect(page.locator("#client-inflight")).to_have_text(re.compile(r"^0 of "))
    screenshot(page, "client")

    dialogs = []

    def accept(d):
        dialogs.append(d.message)
        d.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Kick").click()
    expect(page).to_have_url(re.compile(r"#/clients$"))
    expect(page.locator("#toasts")).to_contain_text("dash-kick-me was kicked")
    assert dialogs and "dash-kick-me" in dialogs[0], dialogs
    assert gone.wait(10), "the MQTT client never saw the disconnect"
    # (paho 2.1 reads a DISCONNECT's reason code only when properties follow it, so it reports
    # Ferry's 0x98 as "Normal disconnection"; crates/ferry/tests/api.rs checks the 0x98 itself.)
    assert not c.is_connected()
    expect(page.get_by_role("link", name="dash-bystander")).to_be_visible()
    expect(page.get_by_role("link", name="dash-kick-me")).to_have_count(0)
    assert admin_api("GET", "/api/v5/clients/dash-kick-me").status == 404


def test_a_kicked_or_unknown_client_shows_an_error(admin_page: Page, console):
    page = admin_page
    console.allow(r"status of 404 .*/api/v5/clients/no-such-client",
                  "the details of a client that does not exist: a 404 is the point")
    page.goto("/#/client?id=no-such-client")
    expect(page.locator("main h1")).to_have_text("Client no-such-client")
    expect(page.get_by_role("alert")).to_contain_text("no-such-client")
    expect(page.get_by_role("link", name="All clients")).to_be_visible()


def test_overview_numbers_match_the_api(admin_page: Page, mqtt, admin_api, screenshot):
    page = admin_page
    a = mqtt("dash-ov-a")
    b = mqtt("dash-ov-b", version=4)
    a.subscribe("dash/ov/+/x", qos=1)
    b.subscribe("dash/ov/#", qos=0)
    subscribed(admin_api, "dash-ov-a", "dash/ov/+/x")
    subscribed(admin_api, "dash-ov-b", "dash/ov/#")
    mqtt.publish(a, "dash/ov/1/x", b"on", qos=1, retain=True)

    keys = [("connections.count", "Connections"), ("live_connections.count", "Live connections"),
            ("sessions.count", "Sessions"), ("subscriptions.count", "Subscriptions"),
            ("topics.count", "Topics"), ("retained.count", "Retained messages")]
    page.goto("/#/overview")
    expect(page.locator("main h1")).to_have_text("Overview")

    # The page refreshes every 5 s: within a refresh or two it shows what the API says now.
    def same():
        st = admin_api("GET", "/api/v5/stats?aggregate=true").body
        shown = {k: stat_value(page, "overview-stats", label).inner_text() for k, label in keys}
        want = {k: f"{st[k]:,}" for k, _ in keys}
        return shown == want and st
    st = wait_until(same, timeout=15, what="the overview's numbers to match /stats")
    assert st["connections.count"] >= 2 and st["subscriptions.count"] >= 2, st
    assert st["retained.count"] >= 1, st

    node = admin_api("GET", "/api/v5/nodes").body[0]
    card = page.locator(".overview-node")
    expect(card).to_contain_text(node["node"])
    expect(card).to_contain_text(node["version"])
    expect(card.locator("#node-status")).to_have_text("running")
    expect(card.locator("#node-uptime")).to_have_text(re.compile(r"\d+m \d+s|\d+h \d+m|\d+d"))
    for label in ["Messages in", "Messages out", "Messages dropped", "Kafka records succeeded",
                  "Kafka records failed"]:
        expect(stat_value(page, "overview-rates", label)).to_have_text(re.compile(r"^[\d.,]+/s$"))
    for title in ["Messages per second", "Kafka records per second", "Connections"]:
        chart = page.locator(".chart").filter(has=page.get_by_role("heading", name=title, exact=True))
        expect(chart.locator("svg[role=img]")).to_have_count(1)
    expect(page.locator(".chart .legend").first).to_contain_text("in:")
    expect(page.locator(".chart .legend").first).to_contain_text("dropped:")

    # Updated in place: a third client shows up without reloading (the same element).
    stat_value(page, "overview-stats", "Connections").evaluate("e => { e.dataset.seen = 'before' }")
    n = st["connections.count"]
    mqtt("dash-ov-c")
    st = wait_until(same, timeout=15, what="the overview to show the third connection")
    assert st["connections.count"] == n + 1, st
    expect(stat_value(page, "overview-stats", "Connections")).to_have_attribute("data-seen", "before")
    screenshot(page, "overview")


def test_overview_health_lists_what_is_not_connected_first(admin_page: Page, admin_api, screenshot):
    page = admin_page
    # A connector to a port where nothing listens: it cannot connect, and says why.
    r = admin_api("POST", "/api/v5/connectors", {
        "type": "kafka_producer", "name": "dash_health_down", "bootstrap_hosts": "127.0.0.1:1"})
    assert r.status in (200, 201), r.text
    try:
        page.goto("/#/overview")
        table = page.locator("#overview-health")
        first = table.locator("tbody tr").first
        expect(first).to_contain_text("dash_health_down", timeout=15_000)
        expect(first).to_have_class(re.compile(r"\battention\b"))
        expect(first.locator(".status")).not_to_have_text("connected")
        expect(first.get_by_role("link", name="dash_health_down")).to_have_attribute("href", "#/connectors")
        expect(page.locator("#ov-health + p")).to_contain_text("not connected")
        screenshot(page, "overview-health")
    finally:
        admin_api("DELETE", "/api/v5/connectors/dash_health_down?cascade=true")


def test_subscriptions_and_topics_pages(admin_page: Page, mqtt, admin_api, screenshot):
    page = admin_page
    c = mqtt("dash-subs")
    c.subscribe("dash/subs/+/temp", qos=2)
    subscribed(admin_api, "dash-subs", "dash/subs/+/temp")

    page.goto("/#/subscriptions")
    expect(page.locator("main h1")).to_have_text("Subscriptions")
    page.get_by_label("Matches topic").fill("dash/subs/room-1/temp")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#subscriptions-list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("dash-subs")
    expect(rows.first).to_contain_text("dash/subs/+/temp")
    expect(rows.first.locator("td").nth(2)).to_have_text("2")
    screenshot(page, "subscriptions")

    page.goto("/#/topics")
    expect(page.locator("main h1")).to_have_text("Topics")
    page.get_by_label("Topic filter (exact)").fill("dash/subs/+/temp")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#topics-list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("dash/subs/+/temp")
    screenshot(page, "topics")
    rows.first.get_by_role("link", name="Show subscriptions").click()
    expect(page.locator("main h1")).to_have_text("Subscriptions")
    expect(page.locator("#subscriptions-list tbody tr")).to_have_count(1)


def test_publish_reaches_a_subscriber_with_its_user_property(admin_page: Page, mqtt, admin_api,
                                                             screenshot, console):
    page = admin_page
    console.allow(r"status of 400 .*/api/v5/publish", "publishing to a wildcard is refused: "
                  "the test checks that the page shows the API's error")
    sub = mqtt("dash-pub-sub")
    got = []
    arrived = threading.Event()

    def on_message(_c, _u, m):
        got.append(m)
        arrived.set()

    sub.on_message = on_message
    sub.subscribe("dash/pub/#", qos=1)
    subscribed(admin_api, "dash-pub-sub", "dash/pub/#")

    page.get_by_role("link", name="Publish", exact=True).click()
    expect(page.locator("main h1")).to_have_text("Publish")
    page.get_by_label("Topic", exact=True).fill("dash/pub/1")
    page.get_by_label("Payload", exact=True).fill("hello from the dashboard")
    page.get_by_label("QoS").select_option("1")
    page.get_by_role("button", name="Add user property").click()
    page.get_by_label("Key 1").fill("source")
    page.get_by_label("Value 1").fill("dashboard")
    page.get_by_role("button", name="Add user property").click()
    page.get_by_label("Key 2").fill("spare")
    page.get_by_role("button", name="Remove property 2").click()
    expect(page.get_by_label("Key 2")).to_have_count(0)
    page.get_by_role("button", name="Publish", exact=True).click()
    result = page.locator("#publish-result")
    expect(result).to_contain_text("Published")
    expect(result).not_to_contain_text("no matching subscribers")
    assert arrived.wait(10), "the subscriber got nothing"
    m = got[0]
    assert m.topic == "dash/pub/1" and m.payload == b"hello from the dashboard", (m.topic, m.payload)
    assert m.qos == 1
    assert list(m.properties.UserProperty) == [("source", "dashboard")], m.properties
    screenshot(page, "publish")

    # base64, and a topic nobody subscribes to: the page says so (reason code 16).
    page.get_by_label("Topic", exact=True).fill("dash/nobody")
    page.get_by_label("Payload encoding").select_option("base64")
    page.get_by_label("Payload", exact=True).fill("not base64!")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(result.get_by_role("alert")).to_contain_text("not valid base64")
    page.get_by_label("Payload", exact=True).fill("aGk=")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(result).to_contain_text("no matching subscribers")

    # The API's own error is shown as it is: a wildcard is no topic name.
    page.get_by_label("Topic", exact=True).fill("dash/#")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(result.get_by_role("alert")).to_be_visible()


def test_retained_message_read_and_deleted(admin_page: Page, admin_api, screenshot, console):
    page = admin_page
    page.goto("/#/publish")
    page.get_by_label("Topic", exact=True).fill("dash/retained/text")
    page.get_by_label("Payload", exact=True).fill("22.5 °C, kept for later")
    page.get_by_label(re.compile("^Retain")).check()
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator("#publish-result")).to_contain_text("(retained)")
    # A payload that is not UTF-8 is shown as hex.
    r = admin_api("POST", "/api/v5/publish", {"topic": "dash/retained/bin", "payload": "/wAQ",
                                               "payload_encoding": "base64", "retain": True})
    assert r.status == 200, r.text

    page.get_by_role("link", name="Retained", exact=True).click()
    expect(page.locator("main h1")).to_have_text("Retained messages")
    page.get_by_label("Topic filter").fill("dash/retained/#")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#retained-list tbody tr")
    expect(rows).to_have_count(2)
    text_row = rows.filter(has_text="dash/retained/text")
    text_row.get_by_role("button", name="Read").click()
    expect(page.locator("#retained-message")).to_contain_text("Payload (text, ")
    expect(page.locator("#retained-payload")).to_have_text("22.5 °C, kept for later")
    screenshot(page, "retained")
    rows.filter(has_text="dash/retained/bin").get_by_role("button", name="Read").click()
    expect(page.locator("#retained-message")).to_contain_text("hex")
    expect(page.locator("#retained-payload")).to_have_text("ff 00 10")

    page.once("dialog", lambda d: d.accept())
    text_row.get_by_role("button", name="Delete").click()
    expect(page.locator("#toasts")).to_contain_text("Deleted the retained message on dash/retained/text")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("dash/retained/bin")
    assert admin_api("GET", "/api/v5/mqtt/retainer/message/dash%2Fretained%2Ftext").status == 404

    # Cancelling "Delete all" keeps everything; accepting it empties the list.
    page.once("dialog", lambda d: d.dismiss())
    page.get_by_role("button", name="Delete all").click()
    expect(rows).to_have_count(1)
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete all").click()
    expect(page.locator("#retained-list")).to_contain_text("No retained messages match.")
    assert admin_api("GET", "/api/v5/mqtt/retainer/messages").body["meta"]["count"] == 0


def test_pages_at_phone_width(new_page, admin_password, mqtt, admin_api, screenshot):
    mqtt("dash-phone")
    page = new_page(390, 844)
    do_login(page, "admin", admin_password)
    for name, title in [("overview", "Overview"), ("clients", "Clients"),
                        ("client?id=dash-phone", "Client dash-phone"),
                        ("subscriptions", "Subscriptions"), ("topics", "Topics"),
                        ("retained", "Retained messages"), ("publish", "Publish")]:
        page.goto(f"/#/{name}")
        expect(page.locator("main h1")).to_have_text(title)
        expect(page.locator("main .loading")).to_have_count(0)
        # Nothing makes the page wider than the phone (tables scroll inside their own box).
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, name
        screenshot(page, f"{name.split('?')[0]}-390")
