# Shared helpers for scripts/*. Source it; do not run it.

step() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=
apt_install() {
    if [ -z "$APT_UPDATED" ]; then
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Debian packages the tests use: mosquitto_pub / mosquitto_sub as independent MQTT clients.
ensure_test_deps() {
    local missing=()
    command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
    command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
    if [ ${#missing[@]} -gt 0 ]; then
        step "installing ${missing[*]}"
        apt_install mosquitto-clients
    fi
    command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install the Rust toolchain (1.95)" >&2; exit 1; }
}
