#!/usr/bin/env bash
# Ferry vs Mosquitto (M1-M7, M1T/M2T over TLS, M1F with a publisher as fast as TCP allows, H1
# connects per second over TLS and TCP) and vs Mosquitto + a paho/confluent-kafka bridge (K1),
# same load, same machine. Prints tables of broker CPU per message or connection, msg/s, loss,
# latency, memory per connection and ratios; bench/compare.py's docstring lists the scenarios.
# BENCH_N (default 200000) and BENCH_N_KAFKA (default 20000) set the message counts;
# BENCH_ONLY=M1,M7 picks scenarios; BENCH_PIN=none|split|shared sets the placement
# (split: broker on CPU 0, load generator on 1). Needs the openssl CLI for the TLS scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_test_deps
ensure_tansu
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto
export PATH="$PATH:/usr/sbin"
ensure_dashboard_venv   # .venv with paho-mqtt and confluent-kafka (pinned in scripts/lib.sh)
step "building ferry (release)"
cargo build --release --locked -p ferry
step "running (placement: ${BENCH_PIN:-none}, $(nproc) CPUs)"
.venv/bin/python bench/compare.py
