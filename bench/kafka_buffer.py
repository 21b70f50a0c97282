"""K1 (MQTT to Kafka, QoS 1, 100 B, key = client id) with the Kafka action in sync mode
(memory, PUBACK after Kafka's ack), async mode (memory queue, PUBACK at once) and disk mode
(PUBACK after the group commit), side by
side into the Tansu test broker: msg/s, loss, duplicates, publish-to-Kafka latency, and the
PUBACK delay (Ferry's `puback_delay_seconds` histogram, bucket bounds: an upper estimate).

    cargo build --release -p ferry && python3 bench/kafka_buffer.py
BENCH_N_KAFKA (default 20000) messages in total over BENCH_CLIENTS (default 20) publishers;
FERRY_TANSU overrides the Tansu binary."""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare as c  # noqa: E402

TANSU = os.environ.get("FERRY_TANSU", c.TANSU)
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "20"))
MODES = [("sync", 'query_mode = "sync"\n'), ("async", 'query_mode = "async"\n'), ("disk", 'buffer_mode = "disk"\n')]


def start(port, api, extra):
    d = tempfile.mkdtemp()
    cfg = os.path.join(d, "ferry.toml")
    with open(cfg, "w") as f:
        f.write(f'[log]\nlevel = "warn"\n[listeners.tcp.default]\nbind = "127.0.0.1:{port}"\n'
                f'[node]\ndata_dir = "{d}/data"\n[api]\nbind = "127.0.0.1:{api}"\n'
                f"[mqtt]\nmax_queued_messages = 1000000\nmax_inflight = 32\n{extra}")
    p = subprocess.Popen([c.FERRY, "serve", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c.wait_port(port)
    c.wait_port(api)
    return p


def puback_delay(api):
    """(p50, p99) upper bounds in microseconds from the histogram's buckets."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{api}/metrics", timeout=10).read().decode()
    buckets = []
    for line in text.splitlines():
        if line.startswith("ferry_puback_delay_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0
    def q(x):
        for le, n in buckets:
            if total and n >= x * total:
                return le * 1e6
        return None
    return q(0.5), q(0.99)


def main():
    kport = c.free_port()
    tansu = subprocess.Popen([TANSU, "broker", "--listener-url", f"tcp://127.0.0.1:{kport}",
                              "--advertised-listener-url", f"tcp://127.0.0.1:{kport}",
                              "--storage-engine", "memory://tansu/"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = {}
    try:
        c.wait_port(kport)
        bootstrap = f"127.0.0.1:{kport}"
        for mode, extra in MODES:
            topic = f"k1-{mode}"
            subprocess.run([TANSU, "topic", "create", topic, "--partitions", "1", "--broker", f"tcp://{bootstrap}"],
                           check=True, capture_output=True)
            port, api = c.free_port(), c.free_port()
            f = start(port, api, f'[connectors.kafka.k]\nbootstrap_hosts = "{bootstrap}"\n'
                                 f'[actions.kafka.a]\nconnector = "k"\ntopic = "{topic}"\nkey = "${{clientid}}"\n'
                                 f'value = "${{payload}}"\n{extra}'
                                 '[rules.r]\nsql = \'SELECT * FROM "t/#"\'\nactions = ["kafka:a"]\n')
            try:
                time.sleep(2)
                c0 = c.cpu_seconds(f.pid)
                out = subprocess.run([c.FERRY, "bench", "kafka", "-p", str(port), "-q", "1", "-s", "100",
                                      "-n", str(c.NK // CLIENTS), "-c", str(CLIENTS), "-t", "t/%i",
                                      "--client-id-prefix", "k1-", "--bootstrap", bootstrap, "--kafka-topic", topic,
                                      "--drain", "30s", "-V", "3.1.1"], capture_output=True, check=True)
                c1 = c.cpu_seconds(f.pid)
                r = json.loads(out.stdout)
                k = r["kafka"]
                p50, p99 = puback_delay(api)
                rows[mode] = {
                    "msg_per_s": round(k["unique"] / max(r["publish"]["elapsed_s"], 1e-9)),
                    "lost": k["lost"], "duplicates": k["duplicates"], "out_of_order": k["out_of_order"],
                    "kafka_p50_us": k["latency_us"]["p50"], "kafka_p99_us": k["latency_us"]["p99"],
                    "puback_p50_us_le": p50, "puback_p99_us_le": p99,
                    "cpu_us_per_msg": round((c1 - c0) * 1e6 / max(k["unique"], 1), 1),
                }
                print(mode, json.dumps(rows[mode]), flush=True)
            finally:
                f.terminate()
                f.wait()
    finally:
        tansu.terminate()
        tansu.wait()
    for base in ("sync", "async"):
        if base in rows and "disk" in rows:
            print(f"disk/{base} msg/s: {rows['disk']['msg_per_s'] / max(rows[base]['msg_per_s'], 1):.2f}")


if __name__ == "__main__":
    main()
