"""Browser tests of Ferry's web dashboard: fixtures and helpers.

Run: ``./scripts/test`` (installs Debian's chromium and the .venv, builds target/debug/ferry),
or, once those exist, ``cargo build -p ferry --locked && .venv/bin/python -m pytest
tests/dashboard -q``. Playwright drives Debian's /usr/bin/chromium (headless,
``--no-sandbox``); ``playwright install`` must never run (nothing may download a browser).

Session fixtures (one of each for the whole run, stopped at the end: terminate, then kill)
-------------------------------------------------------------------------------------------
``kafka`` -> Kafka
    A Tansu broker (``.tools/bin/tansu``, memory storage) on a free loopback port, or the
    cluster in ``FERRY_TEST_KAFKA=host:port`` when set. Started only by tests that ask for it.
    ``kafka.bootstrap``                        "127.0.0.1:PORT" (for a connector's bootstrap_hosts)
    ``kafka.create_topic(name, partitions=1)`` creates a topic
    ``kafka.read(topic, count, timeout=30)``   the first ``count`` records of the topic (from
                                               the earliest offset; fewer if the timeout
                                               passes) as ``Record(topic, partition, offset,
                                               key, value, headers, timestamp)``, key/value as
                                               ``str`` (``None`` when absent), headers a list
                                               of (name, str); a new consumer (unique group
                                               id) assigned every partition from the start
                                               (no group join), closed afterwards. Across
                                               partitions the order is not the produce order.
``ferry`` -> Ferry
    ``target/debug/ferry serve`` (override with ``FERRY_BIN``) with a temp config: one MQTT
    listener ``tcp.default`` and the API on 127.0.0.1 port 0, a temp data dir, no rules and
    no Kafka objects. Attributes and methods:
    ``ferry.url``          "http://127.0.0.1:PORT" (the dashboard is at ``ferry.url + "/"``)
    ``ferry.api_addr``     ("127.0.0.1", PORT);  ``ferry.mqtt_addr`` ("127.0.0.1", PORT)
    ``ferry.mqtt_port``    the MQTT port
    ``ferry.data_dir``     its data dir (a pathlib.Path)
    ``ferry.call(method, path, body=None, token=None, basic=None)`` -> ``Response(status,
                           body, text)`` (``body`` parsed JSON or None; ``basic`` is (key,
                           secret) for HTTP Basic); no exception on HTTP errors.
    ``ferry.login(user, password)`` -> a bearer token (through the API).
    ``ferry.output()``     what it printed so far (stdout and stderr), for messages.
``start_ferry()``
    A factory (session scoped) for more Ferry processes, each with its own data dir (so
    ``admin`` / ``public`` again): ``start_ferry(api_config="")`` -> Ferry, stopped at the end
    of the run; ``api_config`` is TOML lines added to its ``[api]`` (``'token_ttl = "2s"'``).
    test_login uses it for the forced password change so the order of tests never matters.
``admin_password`` -> str
    The password of ``admin`` on ``ferry``. The first test that needs it changes the default
    ``public`` to ``ADMIN_PASSWORD`` through the API (once per session).
``admin_api(method, path, body=None)`` -> Response
    Calls ``ferry``'s API as admin (password already changed; logs in again on 401).
``browser``
    Playwright's Chromium Browser (Debian's /usr/bin/chromium, or ``FERRY_CHROMIUM``; headless,
    ``--no-sandbox``). A missing chromium, Ferry binary, Tansu or venv package fails with a
    message to run ./scripts/test.

Per-test fixtures
-----------------
``console`` -> ConsoleErrors
    Collects the console errors and uncaught page errors of every page made by the fixtures
    below. A test that saw any fails after its body ran (and again at teardown if errors
    arrived later). To accept an expected one, say why:
    ``console.allow(r"status of 401", "the revoked token is refused: that is the test")``
    (a regex searched in "TEXT (URL)"). ``console.errors`` lists what was seen.
``page`` -> Playwright Page
    A new browser context (1280x800, ``base_url`` = ``ferry.url``) and page, not logged in:
    ``page.goto("/")`` opens the dashboard. ``page.set_default_timeout`` is 10 s.
``new_page(width=1280, height=800, base=None)`` -> Page
    More pages (other users, phone width: ``new_page(390, 844)``), watched like ``page``.
``admin_page`` -> Page
    A page logged in as admin (password already changed) on the overview (``#/overview``).
``login`` -> ``login(page, user, password, expect_ok=True)``
    Opens ``/#/login`` and logs in through the form; with ``expect_ok`` waits until the
    login page is gone (on the overview or on the password change).
``screenshot`` -> ``screenshot(page, name, full_page=True)``
    Writes ``target/dashboard-screenshots/NAME.png``; returns its path.
``mqtt`` -> ``mqtt(client_id, version=5, username=None, password=None, clean_start=True)``
    A connected paho-mqtt 2.x client (network loop running), disconnected at the end of the
    test. ``mqtt.publish(client, topic, payload, qos=1, retain=False, properties=None)``
    waits until the publish is acknowledged (also ``from conftest import publish``).

Conventions the dashboard follows (see crates/ferry-api/src/dashboard/app.js): one <h1> per
page, every input has a <label> (``page.get_by_label``), actions are buttons with visible text
(``page.get_by_role("button", name=...)``), lists are tables, errors are ``[role=alert]``
(class ``error``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HINT = "run ./scripts/test, which installs it"

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError as e:  # pragma: no cover - a message instead of a bare ImportError
    raise pytest.UsageError(f"Playwright for Python is missing ({e}): {HINT} into .venv")
try:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
except ImportError as e:  # pragma: no cover
    raise pytest.UsageError(f"paho-mqtt 2.x is missing ({e}): {HINT} into .venv")
try:
    import confluent_kafka
except ImportError as e:  # pragma: no cover
    raise pytest.UsageError(f"confluent-kafka is missing ({e}): {HINT} into .venv")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("FERRY_CHROMIUM", "/usr/bin/chromium")
FERRY_BIN = Path(os.environ.get("FERRY_BIN", ROOT / "target" / "debug" / "ferry"))
TANSU_BIN = ROOT / ".tools" / "bin" / "tansu"
SCREENSHOTS = ROOT / "target" / "dashboard-screenshots"

#: What the session's admin password becomes after the forced change.
ADMIN_PASSWORD = "ferry-dash-2026!"


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before port {port} opened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class Response:
    status: int
    body: Any
    text: str


def http(url: str, method: str, path: str, body: Any = None, token: str | None = None,
         basic: tuple[str, str] | None = None) -> Response:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if basic:
        cred = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {cred}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return Response(status, parsed, text)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: str | None
    headers: list
    timestamp: int


class Kafka:
    def __init__(self, bootstrap: str, tansu: bool):
        self.bootstrap = bootstrap
        self.tansu = tansu

    def create_topic(self, name: str, partitions: int = 1) -> None:
        if self.tansu:
            r = subprocess.run(
                [str(TANSU_BIN), "topic", "create", name, "--partitions", str(partitions),
                 "--broker", f"tcp://{self.bootstrap}"],
                capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, f"tansu topic create {name}: {r.stdout}{r.stderr}"
        else:
            from confluent_kafka.admin import AdminClient, NewTopic
            admin = AdminClient({"bootstrap.servers": self.bootstrap})
            for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
                f.result(30)

    def read(self, topic: str, count: int, timeout: float = 30.0) -> list[Record]:
        consumer = confluent_kafka.Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": f"dashboard-test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
        })
        out: list[Record] = []
        try:
            # Assigned, not subscribed: no group join (about 3 s on Tansu).
            deadline = time.monotonic() + timeout
            parts = []
            while not parts and time.monotonic() < deadline:
                md = consumer.list_topics(topic, timeout=10).topics.get(topic)
                if md is not None and md.error is None:
                    parts = list(md.partitions)
                else:
                    time.sleep(0.2)
            assert parts, f"topic {topic} not found in {self.bootstrap}"
            consumer.assign([confluent_kafka.TopicPartition(topic, p,
                                                            confluent_kafka.OFFSET_BEGINNING)
                             for p in parts])
            while len(out) < count and time.monotonic() < deadline:
                m = consumer.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"reading {topic}: {m.error()}")

                def text(b):
                    return None if b is None else b.decode("utf-8", "replace")

                out.append(Record(m.topic(), m.partition(), m.offset(), text(m.key()),
                                  text(m.value()),
                                  [(k, text(v)) for k, v in (m.headers() or [])],
                                  m.timestamp()[1]))
        finally:
            consumer.close()
        return out


class Ferry:
    """One `ferry serve` process with a config of its own."""

    def __init__(self, workdir: Path, api_config: str = ""):
        if not FERRY_BIN.is_file():
            raise RuntimeError(f"{FERRY_BIN} is missing: run `cargo build -p ferry --locked` "
                               "(./scripts/test does)")
        self.dir = workdir
        self.data_dir = workdir / "data"
        cfg = workdir / "ferry.toml"
        cfg.write_text(
            '[listeners.tcp.default]\nbind = "127.0.0.1:0"\n\n'
            f'[api]\nbind = "127.0.0.1:0"\n{api_config}\n\n'
            f'[node]\ndata_dir = "{self.data_dir}"\n')
        self._lines: list[str] = []
        self._err = open(workdir / "ferry.stderr", "w")
        self.proc = subprocess.Popen(
            [str(FERRY_BIN), "serve", "--config", str(cfg)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._err, text=True,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")})
        ready = threading.Event()
        threading.Thread(target=self._drain, args=(ready,), daemon=True).start()
        self.mqtt_addr = self.api_addr = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (self.mqtt_addr is None or self.api_addr is None):
            if self.proc.poll() is not None and ready.is_set():
                break
            for line in list(self._lines):
                m = re.match(r"ferry: listening on (\S+):(\d+) \(tcp\.default\)", line)
                if m:
                    self.mqtt_addr = (m.group(1), int(m.group(2)))
                m = re.match(r"ferry: api on (\S+):(\d+)", line)
                if m:
                    self.api_addr = (m.group(1), int(m.group(2)))
            time.sleep(0.05)
        if self.mqtt_addr is None or self.api_addr is None:
            self.stop()
            raise RuntimeError(f"ferry did not print its addresses:\n{self.output()}")
        self.mqtt_port = self.mqtt_addr[1]
        self.url = f"http://{self.api_addr[0]}:{self.api_addr[1]}"

    def _drain(self, done: threading.Event) -> None:
        for line in self.proc.stdout:
            self._lines.append(line.rstrip("\n"))
        done.set()

    def output(self) -> str:
        self._err.flush()
        err = (self.dir / "ferry.stderr").read_text(errors="replace")
        return "\n".join(self._lines) + "\n--- stderr ---\n" + err[-20000:]

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             basic: tuple[str, str] | None = None) -> Response:
        return http(self.url, method, path, body, token, basic)

    def login(self, user: str, password: str) -> str:
        r = self.call("POST", "/api/v5/login", {"username": user, "password": password})
        assert r.status == 200, f"login {user}: {r.status} {r.text}"
        return r.body["token"]

    def stop(self) -> None:
        stop(self.proc)
        self._err.close()


# ---------------------------------------------------------------- session fixtures


@pytest.fixture(scope="session")
def tmp_root():
    d = Path(tempfile.mkdtemp(prefix="ferry-dashboard-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka(tmp_root):
    external = os.environ.get("FERRY_TEST_KAFKA")
    if external:
        yield Kafka(external, tansu=False)
        return
    if not TANSU_BIN.is_file():
        pytest.fail(f"{TANSU_BIN} is missing: run ./scripts/test, which installs Tansu")
    port = free_port()
    log = open(tmp_root / "tansu.log", "w")
    proc = subprocess.Popen(
        [str(TANSU_BIN), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
         "--storage-engine", "memory://tansu/"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
        yield Kafka(f"127.0.0.1:{port}", tansu=True)
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="session")
def start_ferry(tmp_root):
    started: list[Ferry] = []

    def start(api_config: str = "") -> Ferry:
        d = tmp_root / f"ferry{len(started)}"
        d.mkdir()
        f = Ferry(d, api_config)
        started.append(f)
        return f

    yield start
    for f in started:
        f.stop()


@pytest.fixture(scope="session")
def ferry(start_ferry):
    return start_ferry()


@pytest.fixture(scope="session")
def admin_password(ferry) -> str:
    r = ferry.call("POST", "/api/v5/login", {"username": "admin", "password": "public"})
    if r.status == 200:
        assert r.body["password_change_required"], r.text
        r = ferry.call("POST", "/api/v5/users/admin/change_pwd",
                       {"old_pwd": "public", "new_pwd": ADMIN_PASSWORD}, r.body["token"])
        assert r.status == 204, f"changing admin's password: {r.status} {r.text}"
    return ADMIN_PASSWORD


@pytest.fixture(scope="session")
def admin_api(ferry, admin_password):
    token = [ferry.login("admin", admin_password)]

    def call(method: str, path: str, body: Any = None) -> Response:
        r = ferry.call(method, path, body, token[0])
        if r.status == 401:
            token[0] = ferry.login("admin", admin_password)
            r = ferry.call(method, path, body, token[0])
        return r

    return call


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run ./scripts/test, which installs Debian's "
                    "chromium (never `playwright install`)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            yield b
        finally:
            b.close()


# ---------------------------------------------------------------- per-test fixtures


@dataclass
class ConsoleErrors:
    errors: list = field(default_factory=list)
    allowed: list = field(default_factory=list)
    reported: int = 0

    def allow(self, pattern: str, reason: str) -> None:
        """Accepts console errors matching `pattern` (searched in "TEXT (URL)"), for `reason`."""
        assert reason.strip(), "say why this console error is expected"
        self.allowed.append((re.compile(pattern), reason))

    def watch(self, page: Page) -> None:
        def on_console(msg):
            if msg.type == "error":
                url = (msg.location or {}).get("url", "")
                self.errors.append(f"console error: {msg.text} ({url})")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def unexpected(self) -> list:
        return [e for e in self.errors if not any(p.search(e) for p, _ in self.allowed)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    c = item.funcargs.get("console")
    if c is not None:
        bad = c.unexpected()
        c.reported = len(bad)
        if bad:
            raise AssertionError("JavaScript errors on the page:\n  " + "\n  ".join(bad))
    return result


@pytest.fixture
def console():
    c = ConsoleErrors()
    yield c
    bad = c.unexpected()
    if len(bad) > c.reported:
        pytest.fail("JavaScript errors on the page (after the test body):\n  " + "\n  ".join(bad))


@pytest.fixture
def new_page(browser, ferry, console):
    contexts = []

    def make(width: int = 1280, height: int = 800, base: str | None = None) -> Page:
        ctx = browser.new_context(viewport={"width": width, "height": height},
                                  base_url=base or ferry.url)
        contexts.append(ctx)
        p = ctx.new_page()
        p.set_default_timeout(10_000)
        console.watch(p)
        return p

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def page(new_page) -> Page:
    return new_page()


def do_login(page: Page, user: str, password: str, expect_ok: bool = True) -> None:
    page.goto("/#/login")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    if expect_ok:
        # (No wait_for_function: the dashboard's CSP forbids evaluating strings.)
        expect(page).not_to_have_url(re.compile(r"#/login"))
        page.locator("main h1").first.wait_for()


@pytest.fixture
def login():
    return do_login


@pytest.fixture
def admin_page(page, admin_password) -> Page:
    do_login(page, "admin", admin_password)
    page.wait_for_url(re.compile(r"#/overview"))
    return page


def take_screenshot(page: Page, name: str, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture
def screenshot():
    return take_screenshot


def publish(client, topic: str, payload, qos: int = 1, retain: bool = False, properties=None):
    """Publishes and waits until the broker acknowledged it (QoS 1/2) or it was sent (QoS 0)."""
    info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
    info.wait_for_publish(10)
    assert info.is_published(), f"publish to {topic} not acknowledged"
    return info


@pytest.fixture
def mqtt(ferry):
    clients = []

    def connect(client_id: str, version: int = 5, username: str | None = None,
                password: str | None = None, clean_start: bool = True, keepalive: int = 60):
        proto = {5: paho.MQTTv5, 4: paho.MQTTv311, 3: paho.MQTTv31}[version]
        if version == 5:
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto)
            kw = {"clean_start": clean_start}
        else:
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto,
                            clean_session=clean_start)
            kw = {}
        if username is not None:
            c.username_pw_set(username, password)
        connected = threading.Event()
        codes = []

        def on_connect(_c, _u, _flags, reason, _props):
            codes.append(reason)
            connected.set()

        c.on_connect = on_connect
        c.connect(ferry.mqtt_addr[0], ferry.mqtt_port, keepalive, **kw)
        c.loop_start()
        clients.append(c)
        assert connected.wait(10), f"MQTT client {client_id} did not connect"
        assert not codes[0].is_failure, f"MQTT client {client_id} refused: {codes[0]}"
        return c

    connect.publish = publish
    yield connect
    for c in clients:
        try:
            c.disconnect()
        finally:
            c.loop_stop()
