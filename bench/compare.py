"""Ferry and its peers side by side, same load, same machine (../shared/docs/bench.md).

Scenarios: M1 (QoS0 100 B 1->1), M2 (QoS1 100 B 1->1, inflight 32), M4 (QoS0 1 KB 1->1)
against Mosquitto; K1 (MQTT to Kafka, QoS1 100 B from 20 publishers, rule SELECT * FROM "t/#",
key = client id) with the Kafka action in each mode against Mosquitto + the
paho/confluent-kafka bridge, both into the Tansu test broker.

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
FERRY = os.path.join(ROOT, "target", "release", "ferry")
TANSU = os.path.join(ROOT, ".tools", "bin", "tansu")
HZ = os.sysconf("SC_CLK_TCK")
N = int(os.environ.get("BENCH_N", "200000"))
# Placement (bench.md): "none" (default, the scheduler decides), "split" (broker on CPU 0, load
# generator on CPU 1), "shared" (everything on CPU 0). Applies to M1/M2/M4.
PIN = os.environ.get("BENCH_PIN", "none")
if PIN not in ("none", "split", "shared"):
    sys.exit(f"BENCH_PIN: none | split | shared, not {PIN!r}")


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
          ("disk", 'buffer_mode = "disk"\n'), ("hybrid", 'buffer_mode = "hybrid"\n')]
K1_CLIENTS = int(os.environ.get("BENCH_K1_CLIENTS", "20"))
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


def start_ferry(port, extra=""):
    d = tempfile.mkdtemp()
    cfg = os.path.join(d, "ferry.toml")
    with open(cfg, "w") as f:
        # The API listens too (as in production), on a free loopback port, with its data
        # in the temp dir.
        f.write(f'[log]\nlevel = "warn"\n[listeners.tcp.default]\nbind = "127.0.0.1:{port}"\n'
                f'[node]\ndata_dir = "{d}/data"\n[api]\nbind = "127.0.0.1:0"\n'
                f"[mqtt]\nmax_queued_messages = 1000000\nmax_inflight = 32\n{extra}")
    p = subprocess.Popen(pinned([FERRY, "serve", "--config", cfg], "broker"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p


def start_mosquitto(port):
    d = tempfile.mkdtemp()
    cfg = os.path.join(d, "mosquitto.conf")
    with open(cfg, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "max_queued_messages 1000000\nmax_inflight_messages 32\n")
    p = subprocess.Popen(pinned(["mosquitto", "-c", cfg], "broker"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p


def run_mqtt(broker, port, qos, size, n):
    sub = subprocess.Popen(pinned([FERRY, "bench", "sub", "-p", str(port), "-q", str(qos), "--expect", str(n),
                                   "--idle", "5s", "-V", "3.1.1"], "loadgen"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    g0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0 = cpu_seconds(broker.pid)
    pub = subprocess.run(pinned([FERRY, "bench", "pub", "-p", str(port), "-q", str(qos), "-s", str(size), "-n", str(n),
                                 "-c", "1", "--inflight", "32", "-V", "3.1.1"], "loadgen"), capture_output=True, check=True)
    gp = resource.getrusage(resource.RUSAGE_CHILDREN)
    out, _ = sub.communicate(timeout=600)
    c1 = cpu_seconds(broker.pid)
    g1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Children's CPU is counted when they are reaped: first the publisher, then the subscriber.
    gen_pub = (gp.ru_utime + gp.ru_stime) - (g0.ru_utime + g0.ru_stime)
    gen_sub = (g1.ru_utime + g1.ru_stime) - (gp.ru_utime + gp.ru_stime)
    r = json.loads(out)
    p = json.loads(pub.stdout)
    delivered = max(r["received"], 1)
    return {
        "cpu_us_per_msg": (c1 - c0) * 1e6 / delivered,
        "msg_per_s": delivered / max(p["elapsed_s"], r["elapsed_s"] - 5 if r["elapsed_s"] > 5 else r["elapsed_s"]),
        "lost": r["lost"], "duplicates": r["duplicates"],
        "p50_us": r["latency_us"]["p50"], "p99_us": r["latency_us"]["p99"], "p999_us": r["latency_us"]["p999"],
        "rss_kb": rss_kb(broker.pid),
        # Load generator CPU per message (bench pub + bench sub, and each), for comparison.
        "loadgen_us_per_msg": (gen_pub + gen_sub) * 1e6 / delivered,
        "loadgen_pub_us_per_msg": gen_pub * 1e6 / delivered,
        "loadgen_sub_us_per_msg": gen_sub * 1e6 / delivered,
    }


def run_kafka(broker_procs, mqtt_port, bootstrap, topic, n):
    c0 = sum(cpu_seconds(p.pid) for p in broker_procs)
    # K1 as the issues define it: 20 publishers (BENCH_K1_CLIENTS), n messages in total.
    out = subprocess.run([FERRY, "bench", "kafka", "-p", str(mqtt_port), "-q", "1", "-s", "100",
                          "-n", str(max(n // K1_CLIENTS, 1)), "-c", str(K1_CLIENTS), "-t", "t/%i",
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
        "rss_kb": sum(rss_kb(p.pid) for p in broker_procs),
    }


def loadgen(r):
    if "loadgen_us_per_msg" not in r:
        return ""
    return f"{r['loadgen_us_per_msg']:.2f} ({r['loadgen_pub_us_per_msg']:.2f}+{r['loadgen_sub_us_per_msg']:.2f})"


def main():
    results = []
    for sid, qos, size in [("M1", 0, 100), ("M2", 1, 100), ("M4", 0, 1024)]:
        if not wanted(sid):
            continue
        row = {"scenario": sid}
        for name, start in [("ferry", start_ferry), ("mosquitto", start_mosquitto)]:
            port = free_port()
            b = start(port)
            try:
                row[name] = run_mqtt(b, port, qos, size, N)
            finally:
                b.terminate()
                b.wait()
        results.append(row)
        print(json.dumps(row), flush=True)

    if not wanted("K1"):
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
        row = {"scenario": "K1"}
        # Ferry in each mode of the Kafka action (one topic each), then the peer.
        for mode, setting in K1_MODES:
            topic = f"k1-ferry-{mode}"
            subprocess.run([TANSU, "topic", "create", topic, "--partitions", "1", "--broker", f"tcp://{bootstrap}"],
                           check=True, capture_output=True)
            port = free_port()
            f = start_ferry(port, f'[connectors.kafka.k]\nbootstrap_hosts = "{bootstrap}"\n'
                                  f'[actions.kafka.a]\nconnector = "k"\ntopic = "{topic}"\nkey = "${{clientid}}"\n'
                                  f'value = "${{payload}}"\n{setting}'
                                  '[rules.r]\nsql = \'SELECT * FROM "t/#"\'\nactions = ["kafka:a"]\n')
            try:
                time.sleep(2)
                row["ferry" if mode == "sync" else f"ferry-{mode}"] = run_kafka([f], port, bootstrap, topic, NK)
            finally:
                f.terminate()
                f.wait()
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
    print(f"placement: {PIN} (M1/M2/M4), {os.cpu_count()} CPUs")
    print(f"{'scenario':8} {'broker':24} {'cpu us/msg':>10} {'msg/s':>10} {'lost':>6} {'dup':>5} {'p50 us':>8} "
          f"{'p99 us':>8} {'rss MB':>7} {'loadgen us/msg (pub+sub)':>26} {'loadgen/broker':>14}")
    for row in results:
        peers = [k for k in row if k != "scenario"]
        for k in peers:
            r = row[k]
            print(f"{row['scenario']:8} {k:24} {r['cpu_us_per_msg']:10.2f} {r['msg_per_s']:10.0f} {r['lost']:6} "
                  f"{r['duplicates']:5} {r['p50_us']:8} {r['p99_us']:8} {r['rss_kb'] / 1024:7.1f} "
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
    with open(os.path.join(ROOT, "target", "bench-compare.json"), "w") as fh:
        json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
