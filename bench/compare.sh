#!/usr/bin/env bash
# Ferry vs Mosquitto (M1, M2, M4) and vs Mosquitto + a paho/confluent-kafka bridge (K1), same
# load, same machine. Prints a table of broker CPU us/msg, msg/s, loss, latency and ratios.
# BENCH_N (default 200000) and BENCH_N_KAFKA (default 20000) set the message counts;
# BENCH_PIN=none|split|shared sets the placement (split: broker on CPU 0, load generator on 1).
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
