"""Ferry and its peers side by side, same load, same machine (../shared/docs/bench.md).

Scenarios against Mosquitto (each a fresh broker process, Ferry then Mosquitto):
  M1  QoS0 100 B 1->1            M2  QoS1 100 B 1->1, inflight 32     M3  QoS2 100 B 1->1
  M4  QoS0 1 KB 1->1             M5  100 publishers -> shared group of 5 ($share/g/bench/#)
  M6  1 publisher -> 100 subscribers (each gets every message)       (M5/M6 at BENCH_FAN_QOS, 1)
  M1T, M2T  M1 and M2 over TLS (same certificate for both brokers; compare with M1/M2)
  M2F  M2 with the publisher 60,000 messages ahead of its PUBACKs, default queue bounds
  M1F  issue 14's fast publisher: QoS0 100 B written as fast as TCP takes them (pre-encoded,
       large writes, bench/fastpath.py), one subscriber counting bytes on a plain socket;
       both brokers with their default queue settings; delivered vs sent
  H1  connects per second over TLS (full handshakes) and over TCP: broker CPU per connect
      (and Mosquitto with set_tcp_nodelay over TLS)
  M7  BENCH_M7_CONNS (15,000) idle MQTT connections held: broker RSS growth per connection,
      connect rate
K1L (K1 in sync mode at a steady BENCH_K1L_RATE per publisher, 1,000: publish-to-PUBACK
percentiles), and K1 (MQTT to Kafka, QoS1 100 B from 20 publishers, rule SELECT * FROM "t/#", key = client
id) with the Kafka action in each mode against Mosquitto + the paho/confluent-kafka bridge,
both into the Tansu test broker.

Reports broker CPU microseconds per delivered message (utime+stime from /proc), msg/s,
loss and latency, and the Ferry/peer ratio. Run through bench/compare.sh."""
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# BENCH_FERRY: another build to measure (before/after a change); the load generator too.
FERRY = os.environ.get("BENCH_FERRY", os.path.join(ROOT, "target", "release", "ferry"))
TANSU = os.path.join(ROOT, ".tools", "bin", "tansu")
HZ = os.sysconf("SC_CLK_TCK")
N = int(os.environ.get("BENCH_N", "200000"))
# Placement (bench.md): "none" (default, the scheduler decides), "split" (broker on CPU 0, load
# generator on CPU 1), "shared" (everything on CPU 0). Applies to M1/M2/M4.
PIN = os.environ.get("BENCH_PIN", "none")
if PIN not in ("none", "split", "shared"):
    sys.exit(f"BENCH_PIN: none | split | shared, not {PIN!r}")


# Message counts of the scenarios that multiply deliveries or connections.
N_FAN = int(os.environ.get("BENCH_N_M6", str(max(N // 50, 100))))
FAN_QOS = int(os.environ.get("BENCH_FAN_QOS", "1"))
M7_CONNS = int(os.environ.get("BENCH_M7_CONNS", "15000"))
HANDSHAKES = int(os.environ.get("BENCH_HANDSHAKES", "5000"))
CONN_CONCURRENCY = int(os.environ.get("BENCH_CONN_CONCURRENCY", "8"))
# M1F: messages per round and rounds (issue 14: 300,000, five rounds).
N_FAST = int(os.environ.get("BENCH_N_FAST", "300000"))
FAST_ROUNDS = int(os.environ.get("BENCH_FAST_ROUNDS", "3"))
# The TLS scenarios' key: rsa (2048 bits, the common default) or ec (P-256).
TLS_KEY = os.environ.get("BENCH_TLS_KEY", "rsa")


def pinned(cmd, role):
    """`cmd` under taskset for the broker or the load generator, per BENCH_PIN."""
    if PIN == "none":
        return cmd
    cpu = "1" if PIN == "split" and role == "loadgen" else "0"
    return ["taskset", "-c", cpu] + cmd
NK = int(os.environ.get("BENCH_N_KAFKA", "20000"))
# BENCH_ONLY=M4 or M1,K1: run only these scenarios (default: all).
# K1 runs Ferry with the Kafka action in each of these modes (BENCH_K1_MODES=sync,disk to pick).
K1_ALL = [("sync", 'query_mode = "sync"\n'), ("async", 'query_mode = "async"\n'),
          ("disk", 'buffer_mode = "disk"\n'), ("hybrid", 'buffer_mode = "hybrid"\n'),
          # Not in the default set: sync mode with a 1 ms linger (what a lower linger buys).
          ("sync-linger1", 'query_mode = "sync"\nlinger = "1ms"\n')]
K1_CLIENTS = int(os.environ.get("BENCH_K1_CLIENTS", "20"))
# K1L: K1 in sync mode at a steady rate per publisher for K1L_SECONDS (issue 14's latency target).
K1L_RATE = int(os.environ.get("BENCH_K1L_RATE", "1000"))
K1L_SECONDS = int(os.environ.get("BENCH_K1L_SECONDS", "20"))
K1_MODES = [m for m in K1_ALL if m[0] in os.environ.get("BENCH_K1_MODES", "sync,async,disk").split(",")]
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]


def wanted(sid):
    return not ONLY or sid in ONLY


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, limit=20):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing on port {port}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_open_files():
    """M7 holds 15,000 connections: the soft limit goes up to the hard one, for this script
    and every broker and load generator it starts (they inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def make_certs(kind):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it (openssl CLI), in a
    temp dir readable by Mosquitto (which drops root for the mosquitto user before it loads
    them). Returns {"ca", "cert", "key"}."""
    d = tempfile.mkdtemp()
    os.chmod(d, 0o755)
    key = ["-newkey", "rsa:2048"] if kind == "rsa" else \
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    q = dict(check=True, capture_output=True, cwd=d)
    subprocess.run(["openssl", "req", "-x509", "-new", "-nodes", *key, "-keyout", "ca.key", "-out", "ca.pem",
                    "-days", "2", "-subj", "/CN=bench CA"], **q)
    subprocess.run(["openssl", "req", "-new", "-nodes", *key, "-keyout", "server.key", "-out", "server.csr",
                    "-subj", "/CN=localhost"], **q)
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext"], **q)
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    return {"ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "server.pem"),
            "key": os.path.join(d, "server.key")}


def start_ferry(port, extra="", tls=None, defaults=False):
    """tls: serve MQTT over TLS on `port` (an ssl listener) instead of plain TCP.
    defaults: no [mqtt] overrides (the queue bounds a user gets)."""
    d = tempfile.mkdtemp()
    cfg = os.path.join(d, "ferry.toml")
    listener = (f'[listeners.ssl.default]\nbind = "127.0.0.1:{port}"\ncertfile = "{tls["cert"]}"\n'
                f'keyfile = "{tls["key"]}"\n') if tls else f'[listeners.tcp.default]\nbind = "127.0.0.1:{port}"\n'
    mqtt = "" if defaults else "[mqtt]\nmax_queued_messages = 1000000\nmax_inflight = 32\n"
    with open(cfg, "w") as f:
        # The API listens too (as in production), on a free loopback port, with its data
        # in the temp dir.
        f.write(f'[log]\nlevel = "warn"\n{listener}'
                f'[node]\ndata_dir = "{d}/data"\n[api]\nbind = "127.0.0.1:0"\n'
                f"{mqtt}{extra}")
    p = subprocess.Popen(pinned([FERRY, "serve", "--config", cfg], "broker"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p


def start_mosquitto(port, tls=None, defaults=False, nodelay=False):
    """nodelay: `set_tcp_nodelay true` (off by default: Nagle holds a small write, such as
    the CONNACK after the TLS session tickets, until the peer's delayed ACK)."""
    d = tempfile.mkdtemp()
    cfg = os.path.join(d, "mosquitto.conf")
    with open(cfg, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        if nodelay:
            f.write("set_tcp_nodelay true\n")
        if tls:
            f.write(f"certfile {tls['cert']}\nkeyfile {tls['key']}\n")
        if not defaults:
            f.write("max_queued_messages 1000000\nmax_inflight_messages 32\n")
    p = subprocess.Popen(pinned(["mosquitto", "-c", cfg], "broker"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p


def tls_args(tls):
    return ["--cafile", tls["ca"]] if tls else []


def wait_file(path, limit, proc=None):
    end = time.time() + limit
    while not os.path.exists(path):
        if time.time() > end or (proc is not None and proc.poll() is not None):
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.02)


def run_mqtt(broker, port, qos, size, n, pubs=1, subs=1, shared=False, each=False, tls=None, inflight=32):
    """n messages from `pubs` publishers (n / pubs each) to `subs` subscribers: a shared group
    (`shared`), a fan-out where each gets every message (`each`), or one subscriber."""
    ready = os.path.join(tempfile.mkdtemp(), "ready")
    flt = "$share/g/bench/#" if shared else "bench/#"
    sub = subprocess.Popen(pinned([FERRY, "bench", "sub", "-p", str(port), "-q", str(qos), "-c", str(subs), "-t", flt,
                                   "--expect", str(n), *(["--each"] if each else []), "--idle", "5s",
                                   "-V", "3.1.1", "--ready-file", ready, *tls_args(tls)], "loadgen"),
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wait_file(ready, 120, sub)
    time.sleep(0.2)
    g0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0 = cpu_seconds(broker.pid)
    t0 = time.time()
    pub = subprocess.run(pinned([FERRY, "bench", "pub", "-p", str(port), "-q", str(qos), "-s", str(size),
                                 "-n", str(n // pubs), "-c", str(pubs), "--inflight", str(inflight), "-V", "3.1.1",
                                 *tls_args(tls)], "loadgen"), capture_output=True, check=True)
    gp = resource.getrusage(resource.RUSAGE_CHILDREN)
    out, _ = sub.communicate(timeout=900)
    t1 = time.time()
    c1 = cpu_seconds(broker.pid)
    g1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Children's CPU is counted when they are reaped: first the publisher, then the subscriber.
    gen_pub = (gp.ru_utime + gp.ru_stime) - (g0.ru_utime + g0.ru_stime)
    gen_sub = (g1.ru_utime + g1.ru_stime) - (gp.ru_utime + gp.ru_stime)
    r = json.loads(out)
    p = json.loads(pub.stdout)
    delivered = max(r["received"], 1)
    # From the start of the publisher to the subscriber's last message.
    wall = r["last_us"] / 1e6 - t0 if r.get("last_us") else (t1 - t0)
    ack = p.get("ack_latency_us") or {}
    return {
        "cpu_us_per_msg": (c1 - c0) * 1e6 / delivered,
        "msg_per_s": delivered / max(wall, p["elapsed_s"], 1e-9),
        "expected": r["sent"], "delivered": r["received"],
        "lost": r["lost"], "duplicates": r["duplicates"],
        "p50_us": r["latency_us"]["p50"], "p99_us": r["latency_us"]["p99"], "p999_us": r["latency_us"]["p999"],
        "ack_p50_us": ack.get("p50"), "ack_p99_us": ack.get("p99"),
        "rss_kb": rss_kb(broker.pid),
        # Load generator CPU per message (bench pub + bench sub, and each), for comparison.
        "loadgen_us_per_msg": (gen_pub + gen_sub) * 1e6 / delivered,
        "loadgen_pub_us_per_msg": gen_pub * 1e6 / delivered,
        "loadgen_sub_us_per_msg": gen_sub * 1e6 / delivered,
    }


def run_conn(broker, port, count, hold, tls=None):
    """Opens `count` MQTT connections (CONNECT/CONNACK, keep alive 0) from
    BENCH_CONN_CONCURRENCY connectors and holds them: connect rate, broker CPU per connect,
    and the broker's RSS growth per held connection."""
    time.sleep(1.0)
    rss0 = vm_rss_kb(broker.pid)
    c0 = cpu_seconds(broker.pid)
    ready = os.path.join(tempfile.mkdtemp(), "ready.json")
    p = subprocess.Popen(pinned([FERRY, "bench", "conn", "-p", str(port), "-c", str(count),
                                 "--concurrency", str(CONN_CONCURRENCY), "--hold", hold, "-V", "3.1.1",
                                 "--ready-file", ready, *tls_args(tls)], "loadgen"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_file(ready, 900, p)
    c1 = cpu_seconds(broker.pid)
    # Let the broker settle (tasks parked, buffers given back), then read its memory while
    # the connections are still held.
    time.sleep(1.0)
    rss1 = vm_rss_kb(broker.pid)
    with open(ready) as f:
        r = json.load(f)
    p.wait(timeout=900)
    n = max(r["connected"], 1)
    return {
        "requested": r["requested"], "connected": r["connected"], "errors": r["errors"],
        "connects_per_s": r["connects_per_s"], "cpu_us_per_conn": (c1 - c0) * 1e6 / n,
        "p50_us": r["connect_latency_us"]["p50"], "p99_us": r["connect_latency_us"]["p99"],
        "rss_before_kb": rss0, "rss_held_kb": rss1, "rss_kb_per_conn": (rss1 - rss0) / n,
        "tls": r.get("tls"),
    }


FAST_TOPIC = "bench/fast"


def run_fast(broker, port, n, rounds):
    """M1F: bench/fastpath.py's publisher (pre-encoded QoS 0, as fast as TCP takes them) and
    byte-counting subscriber, `rounds` times n messages."""
    script = os.path.join(ROOT, "bench", "fastpath.py")
    frame = 1 + 1 + 2 + len(FAST_TOPIC) + 100
    sent = delivered = 0
    cpu = elapsed = 0.0
    for _ in range(rounds):
        sub = subprocess.Popen(pinned([sys.executable, script, "sub", str(port), FAST_TOPIC, str(frame), str(n), "3"],
                                      "loadgen"), stdout=subprocess.PIPE, text=True)
        if sub.stdout.readline().strip() != "ready":
            raise RuntimeError("fastpath subscriber did not subscribe")
        c0 = cpu_seconds(broker.pid)
        pub = subprocess.run(pinned([sys.executable, script, "pub", str(port), FAST_TOPIC, str(n), "100"], "loadgen"),
                             capture_output=True, check=True, text=True)
        out, _ = sub.communicate(timeout=600)
        cpu += cpu_seconds(broker.pid) - c0
        r = json.loads(out)
        sent += json.loads(pub.stdout)["sent"]
        delivered += r["messages"]
        elapsed += r["elapsed_s"]
    return {
        "sent": sent, "delivered": delivered, "lost": sent - delivered,
        "lost_pct": 100.0 * (sent - delivered) / max(sent, 1),
        "msg_per_s": delivered / max(elapsed, 1e-9),
        "cpu_us_per_msg": cpu * 1e6 / max(delivered, 1),
        "rss_kb": rss_kb(broker.pid),
    }


def run_kafka(broker_procs, mqtt_port, bootstrap, topic, n, rate=0):
    """rate: messages per second per publisher (K1L: a steady load), 0 for as fast as possible."""
    c0 = sum(cpu_seconds(p.pid) for p in broker_procs)
    # K1 as the issues define it: 20 publishers (BENCH_K1_CLIENTS), n messages in total.
    out = subprocess.run([FERRY, "bench", "kafka", "-p", str(mqtt_port), "-q", "1", "-s", "100",
                          "-n", str(max(n // K1_CLIENTS, 1)), "-c", str(K1_CLIENTS), "-t", "t/%i",
                          "-R", str(rate),
                          "--client-id-prefix", "k1-", "--bootstrap", bootstrap,
                          "--kafka-topic", topic, "--drain", "30s", "-V", "3.1.1"],
                         capture_output=True, check=True)
    c1 = sum(cpu_seconds(p.pid) for p in broker_procs)
    r = json.loads(out.stdout)
    k = r["kafka"]
    delivered = max(k["unique"], 1)
    return {
        "cpu_us_per_msg": (c1 - c0) * 1e6 / delivered,
        "msg_per_s": delivered / max(r["publish"]["elapsed_s"], 1e-9),
        "lost": k["lost"], "duplicates": k["duplicates"], "out_of_order": k["out_of_order"],
        "p50_us": k["latency_us"]["p50"], "p99_us": k["latency_us"]["p99"], "p999_us": k["latency_us"]["p999"],
        "ack_p50_us": (r["publish"].get("ack_latency_us") or {}).get("p50"),
        "ack_p99_us": (r["publish"].get("ack_latency_us") or {}).get("p99"),
        "rss_kb": sum(rss_kb(p.pid) for p in broker_procs),
    }


def run_kafka_ferry(bootstrap, topic, setting, n, rate=0):
    """A fresh Ferry with one rule (`SELECT *` from t/#) into a Kafka action on a new `topic`
    (`setting`: the action's mode lines), measured by `run_kafka`."""
    subprocess.run([TANSU, "topic", "create", topic, "--partitions", "1", "--broker", f"tcp://{bootstrap}"],
                   check=True, capture_output=True)
    port = free_port()
    f = start_ferry(port, f'[connectors.kafka.k]\nbootstrap_hosts = "{bootstrap}"\n'
                          f'[actions.kafka.a]\nconnector = "k"\ntopic = "{topic}"\nkey = "${{clientid}}"\n'
                          f'value = "${{payload}}"\n{setting}'
                          '[rules.r]\nsql = \'SELECT * FROM "t/#"\'\nactions = ["kafka:a"]\n')
    try:
        time.sleep(2)
        return run_kafka([f], port, bootstrap, topic, n, rate=rate)
    finally:
        f.terminate()
        f.wait()


def loadgen(r):
    if "loadgen_us_per_msg" not in r:
        return ""
    return f"{r['loadgen_us_per_msg']:.2f} ({r['loadgen_pub_us_per_msg']:.2f}+{r['loadgen_sub_us_per_msg']:.2f})"


BROKERS = [("ferry", start_ferry), ("mosquitto", start_mosquitto)]


def start_mosquitto_nodelay(port, tls=None, defaults=False):
    return start_mosquitto(port, tls, defaults, nodelay=True)


def each_broker(row, run, tls=None, defaults=False, suffix="", brokers=BROKERS):
    """Runs `run(broker_process, port)` against a fresh Ferry, then a fresh Mosquitto."""
    for name, start in brokers:
        port = free_port()
        b = start(port, tls=tls, defaults=defaults)
        try:
            row[name + suffix] = run(b, port)
        finally:
            b.terminate()
            b.wait()


def main():
    limit = raise_open_files()
    results = []
    load = {"loadavg_start": os.getloadavg(), "open_files": limit}
    print(f"load average at start: {load['loadavg_start']}, open files limit {limit}", flush=True)
    tls_ids = {"M1T", "M2T", "H1"}
    certs = make_certs(TLS_KEY) if any(wanted(t) for t in tls_ids) else None
    n5 = max(N // 100, 1) * 100
    mqtt = [
        # id, QoS, payload size, messages, run_mqtt options
        ("M1", 0, 100, N, {}), ("M2", 1, 100, N, {}), ("M3", 2, 100, N, {}), ("M4", 0, 1024, N, {}),
        ("M5", FAN_QOS, 100, n5, {"pubs": 100, "subs": 5, "shared": True}),
        ("M6", FAN_QOS, 100, N_FAN, {"subs": 100, "each": True}),
        ("M1T", 0, 100, N, {"tls": certs}), ("M2T", 1, 100, N, {"tls": certs}),
        # M2 with the publisher as fast as MQTT allows (60,000 unacknowledged, far beyond any
        # queue), both brokers with their default queue bounds.
        ("M2F", 1, 100, N_FAST, {"inflight": 60000, "defaults": True}),
    ]
    for sid, qos, size, n, opts in mqtt:
        if not wanted(sid):
            continue
        row = {"scenario": sid}
        defaults = opts.pop("defaults", False)
        each_broker(row, lambda b, port: run_mqtt(b, port, qos, size, n, **opts), tls=opts.get("tls"),
                    defaults=defaults)
        results.append(row)
        print(json.dumps(row), flush=True)
    if wanted("M1F"):
        row = {"scenario": "M1F", "kind": "fast"}
        each_broker(row, lambda b, port: run_fast(b, port, N_FAST, FAST_ROUNDS), defaults=True)
        results.append(row)
        print(json.dumps(row), flush=True)
    if wanted("M7"):
        row = {"scenario": "M7", "kind": "conn"}
        each_broker(row, lambda b, port: run_conn(b, port, M7_CONNS, "3s"))
        results.append(row)
        print(json.dumps(row), flush=True)
    if wanted("H1"):
        row = {"scenario": "H1", "kind": "conn"}
        each_broker(row, lambda b, port: run_conn(b, port, HANDSHAKES, "0s", certs), tls=certs, suffix=" tls")
        each_broker(row, lambda b, port: run_conn(b, port, HANDSHAKES, "0s"), suffix=" tcp")
        # Mosquitto with TCP_NODELAY, as Ferry always sets it.
        each_broker(row, lambda b, port: run_conn(b, port, HANDSHAKES, "0s", certs), tls=certs,
                    suffix=" tls", brokers=[("mosquitto-nodelay", start_mosquitto_nodelay)])
        results.append(row)
        print(json.dumps(row), flush=True)
    results.append({"scenario": "machine", "kind": "machine", **load,
                    "tls_key": TLS_KEY if certs else None, "cpus": os.cpu_count()})

    if not wanted("K1") and not wanted("K1L"):
        return report(results)
    kport = free_port()
    tansu = subprocess.Popen([TANSU, "broker", "--listener-url", f"tcp://127.0.0.1:{kport}",
                              "--advertised-listener-url", f"tcp://127.0.0.1:{kport}",
                              "--storage-engine", "memory://tansu/"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(kport)
        bootstrap = f"127.0.0.1:{kport}"
        for t in ["k1-bridge"]:
            subprocess.run([TANSU, "topic", "create", t, "--partitions", "1", "--broker", f"tcp://{bootstrap}"],
                           check=True, capture_output=True)
        if wanted("K1L"):
            # Issue 14: sync mode at a steady K1L_RATE per publisher (20,000 msg/s from 20):
            # publish-to-PUBACK (= to Kafka's acknowledgement) percentiles, default linger.
            r = run_kafka_ferry(bootstrap, "k1l-ferry-sync", 'query_mode = "sync"\n',
                                K1L_RATE * K1_CLIENTS * K1L_SECONDS, rate=K1L_RATE)
            row = {"scenario": "K1L", "kind": "k1l", "rate_per_s": K1L_RATE * K1_CLIENTS, "ferry": r}
            results.append(row)
            print(json.dumps(row), flush=True)
        if not wanted("K1"):
            return report(results)
        row = {"scenario": "K1"}
        # Ferry in each mode of the Kafka action (one topic each), then the peer.
        for mode, setting in K1_MODES:
            row["ferry" if mode == "sync" else f"ferry-{mode}"] = run_kafka_ferry(bootstrap, f"k1-ferry-{mode}",
                                                                                 setting, NK)
        port = free_port()
        m = start_mosquitto(port)
        bridge = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "bridge.py"), str(port), bootstrap,
                                   "k1-bridge", "t/#"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            bridge.stdout.readline()
            row["mosquitto+paho-bridge"] = run_kafka([m, bridge], port, bootstrap, "k1-bridge", NK)
        finally:
            bridge.terminate()
            bridge.wait()
            m.terminate()
            m.wait()
        results.append(row)
        print(json.dumps(row), flush=True)
    finally:
        tansu.terminate()
        tansu.wait()

    report(results)


def report(results):
    print()
    print(f"placement: {PIN}, {os.cpu_count()} CPUs")
    msgs = [r for r in results if "kind" not in r]
    if msgs:
        report_messages(msgs)
    for row in [r for r in results if r.get("kind") == "k1l"]:
        r = row["ferry"]
        print()
        print(f"K1L ferry sync at {row['rate_per_s']} msg/s: publish-to-PUBACK p50/p99 "
              f"{r['ack_p50_us']}/{r['ack_p99_us']} us, publish-to-consumer p50/p99 "
              f"{r['p50_us']}/{r['p99_us']} us, lost {r['lost']}, cpu {r['cpu_us_per_msg']:.2f} us/msg")
    fast = [r for r in results if r.get("kind") == "fast"]
    for row in fast:
        print()
        print(f"{'scenario':8} {'broker':12} {'sent':>9} {'delivered':>9} {'lost':>9} {'lost %':>7} "
              f"{'msg/s':>10} {'cpu us/msg':>10} {'rss MB':>7}")
        for k in [k for k in row if k not in ("scenario", "kind")]:
            r = row[k]
            print(f"{row['scenario']:8} {k:12} {r['sent']:9} {r['delivered']:9} {r['lost']:9} {r['lost_pct']:7.1f} "
                  f"{r['msg_per_s']:10.0f} {r['cpu_us_per_msg']:10.2f} {r['rss_kb'] / 1024:7.1f}")
    conns = [r for r in results if r.get("kind") == "conn"]
    if conns:
        print()
        print(f"{'scenario':8} {'broker':22} {'connected':>9} {'errors':>6} {'conn/s':>8} {'cpu us/conn':>11} "
              f"{'p50 us':>8} {'p99 us':>8} {'rss MB':>7} {'KB/conn':>8}  tls")
    for row in conns:
        for k in [k for k in row if k not in ("scenario", "kind")]:
            r = row[k]
            tls = r["tls"]["version"] + " " + r["tls"]["suite"] if r.get("tls") else ""
            print(f"{row['scenario']:8} {k:22} {r['connected']:9} {r['errors']:6} {r['connects_per_s']:8.0f} "
                  f"{r['cpu_us_per_conn']:11.1f} {r['p50_us']:8} {r['p99_us']:8} {r['rss_held_kb'] / 1024:7.1f} "
                  f"{held(row, r):>8}  {tls}")
    for r in results:
        if r.get("kind") == "machine":
            r["loadavg_end"] = os.getloadavg()
            print(f"load average start {r['loadavg_start']}, end {r.get('loadavg_end')}; TLS key {r['tls_key']}")
    by_id = {r["scenario"]: r for r in results}
    for plain, tls in [("M1", "M1T"), ("M2", "M2T")]:
        if plain in by_id and tls in by_id:
            for b in ("ferry", "mosquitto"):
                print(f"{tls}/{plain} {b:10} cpu x{by_id[tls][b]['cpu_us_per_msg'] / max(by_id[plain][b]['cpu_us_per_msg'], 1e-9):.2f}"
                      f"  msg/s x{by_id[tls][b]['msg_per_s'] / max(by_id[plain][b]['msg_per_s'], 1e-9):.2f}")
    with open(os.path.join(ROOT, "target", "bench-compare.json"), "w") as fh:
        json.dump(results, fh, indent=2)


def held(row, r):
    """Memory per connection, where the connections were held while it was read (M7; H1
    closes them at once)."""
    return f"{r['rss_kb_per_conn']:.2f}" if row["scenario"] == "M7" else "-"


def report_messages(results):
    print(f"{'scenario':8} {'broker':24} {'cpu us/msg':>10} {'msg/s':>10} {'expected':>9} {'lost':>6} {'dup':>5} "
          f"{'p50 us':>8} {'p99 us':>8} {'ack p50':>8} {'ack p99':>8} {'rss MB':>7} "
          f"{'loadgen us/msg (pub+sub)':>26} {'loadgen/broker':>14}")
    for row in results:
        peers = [k for k in row if k != "scenario"]
        for k in peers:
            r = row[k]
            print(f"{row['scenario']:8} {k:24} {r['cpu_us_per_msg']:10.2f} {r['msg_per_s']:10.0f} "
                  f"{r.get('expected', ''):>9} {r['lost']:6} "
                  f"{r['duplicates']:5} {r['p50_us']:8} {r['p99_us']:8} {str(r.get('ack_p50_us') or ''):>8} "
                  f"{str(r.get('ack_p99_us') or ''):>8} {r['rss_kb'] / 1024:7.1f} "
                  f"{loadgen(r):>26} {r.get('loadgen_us_per_msg', float('nan')) / max(r['cpu_us_per_msg'], 1e-9):14.2f}")
        p = row[peers[-1]]
        for k in peers[:-1]:
            f = row[k]
            name = "ferry/peer" if k == "ferry" else f"{k}/peer"
            print(f"{row['scenario']:8} {name:24} {f['cpu_us_per_msg'] / max(p['cpu_us_per_msg'], 1e-9):10.2f} "
                  f"{f['msg_per_s'] / max(p['msg_per_s'], 1e-9):10.2f}")
        if "ferry-async" in row and "ferry-disk" in row:
            a, d = row["ferry-async"], row["ferry-disk"]
            print(f"{row['scenario']:8} {'ferry-disk/ferry-async':24} "
                  f"{d['cpu_us_per_msg'] / max(a['cpu_us_per_msg'], 1e-9):10.2f} "
                  f"{d['msg_per_s'] / max(a['msg_per_s'], 1e-9):10.2f}")


if __name__ == "__main__":
    main()
