"""Load that does not flatter the broker (../shared/docs/bench.md, issue 14's M1 target).

`fastpath.py pub PORT TOPIC COUNT SIZE`: one MQTT 3.1.1 publisher that writes COUNT QoS 0
PUBLISH packets of SIZE payload bytes, pre-encoded, in large writes, as fast as TCP takes
them (no pacing, nothing read), then DISCONNECT. Prints {"sent", "elapsed_s"}.

`fastpath.py sub PORT TOPIC FRAME EXPECT IDLE_S`: one subscriber on a plain socket that only
counts bytes after its SUBACK; every delivered PUBLISH is FRAME bytes long (same topic,
QoS 0, no properties), so messages = bytes / FRAME. Prints "ready" once subscribed, then
{"bytes", "messages", "elapsed_s"} after EXPECT messages or IDLE_S seconds without data.
"""
import json
import socket
import sys
import time


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(kind, body):
    return bytes([kind]) + varint(len(body)) + body


def string(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def connect(port, client_id):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # MQTT 3.1.1, clean session, keep alive 0 (no pings needed).
    s.sendall(packet(0x10, string("MQTT") + bytes([4, 0x02, 0, 0]) + string(client_id)))
    ack = recv_exact(s, 4)
    if ack[0] != 0x20 or ack[3] != 0:
        raise SystemExit(f"CONNACK refused: {ack!r}")
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk
    return buf


def publish_frame(topic, size):
    return packet(0x30, string(topic) + b"x" * size)


def pub(port, topic, count, size):
    s = connect(port, "fast-pub")
    data = publish_frame(topic, size) * count
    t0 = time.time()
    view = memoryview(data)
    step = 1 << 20
    for i in range(0, len(data), step):
        s.sendall(view[i:i + step])
    elapsed = time.time() - t0
    s.sendall(packet(0xE0, b""))
    s.shutdown(socket.SHUT_WR)
    s.settimeout(30)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
    print(json.dumps({"sent": count, "elapsed_s": elapsed}), flush=True)


def sub(port, topic, frame, expect, idle):
    s = connect(port, "fast-sub")
    s.sendall(packet(0x82, (1).to_bytes(2, "big") + string(topic) + b"\x00"))
    ack = recv_exact(s, 5)
    if ack[0] != 0x90 or ack[4] >= 0x80:
        raise SystemExit(f"SUBACK refused: {ack!r}")
    print("ready", flush=True)
    total, first, last = 0, None, None
    want = expect * frame
    buf = bytearray(4 << 20)
    s.settimeout(idle)
    start = time.time()
    while total < want:
        try:
            n = s.recv_into(buf)
        except socket.timeout:
            if first is not None or time.time() - start > 60:
                break
            continue
        if n == 0:
            break
        last = time.time()
        if first is None:
            first = last
        total += n
    s.close()
    print(json.dumps({"bytes": total, "messages": total // frame,
                      "elapsed_s": (last - first) if first else 0.0}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "pub":
        pub(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "sub":
        sub(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
    else:
        sys.exit(__doc__)
