#!/usr/bin/env bash
# Shared setup for scripts/demo.sh and .ci/run on a Debian/Ubuntu machine with Node >= 20: checks Node,
# installs nats-server (and, for the Python SDK, protoc, its gRPC plugin, python3-grpcio and python3-protobuf) from
# the distribution when they are missing, and installs the npm dependencies.
# Source it from the repository root; it defines functions and runs nothing by itself.

capa_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

capa_require_node() {
  if ! command -v node >/dev/null 2>&1; then
    echo "node is not installed: capa needs Node.js >= 20.12 (e.g. from https://nodejs.org or NodeSource)" >&2
    exit 1
  fi
  local version
  version=$(node -p 'process.versions.node')
  if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=12)?0:1)'; then
    echo "node $version is too old: capa needs Node.js >= 20.12" >&2
    exit 1
  fi
}

# Runs a command as root: directly when we are root, through sudo otherwise.
capa_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

capa_require_nats_server() {
  if command -v nats-server >/dev/null 2>&1 || [ -n "${CAPA_NATS_SERVER:-}" ]; then return; fi
  capa_log "installing nats-server (apt-get)"
  capa_as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive capa_as_root apt-get install -y -q nats-server
}

# The container driver's end-to-end test builds its image from a static busybox (images cannot be pulled in CI);
# only needed where podman is installed (without podman that test runs the process driver only).
capa_require_container_test_tools() {
  # CI (a fresh machine) installs podman so the container driver's e2e test always runs for real there;
  # elsewhere the test runs when podman is present and the process-driver cases run everywhere.
  if [ -n "${CI:-}" ] && ! command -v podman >/dev/null 2>&1; then
    capa_log "installing podman and runc for the container driver test (apt-get)"
    capa_as_root apt-get update -q
    DEBIAN_FRONTEND=noninteractive capa_as_root apt-get install -y -q podman runc busybox-static
  fi
  if ! command -v podman >/dev/null 2>&1; then return; fi
  if [ -x /bin/busybox ] || [ -x /usr/bin/busybox ]; then return; fi
  capa_log "installing busybox-static for the container driver test (apt-get)"
  capa_as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive capa_as_root apt-get install -y -q busybox-static
}

# The TLS tests make their certificates with openssl.
capa_require_openssl() {
  if command -v openssl >/dev/null 2>&1; then return; fi
  capa_log "installing openssl (apt-get)"
  capa_as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive capa_as_root apt-get install -y -q openssl
}

# The web console's page test drives Debian's Chromium (playwright-core never downloads a browser).
capa_require_chromium() {
  if [ -x "${CAPA_CHROMIUM:-/usr/bin/chromium}" ]; then return; fi
  capa_log "installing chromium for the console's page test (apt-get)"
  capa_apt_install chromium
}

# The deployment test validates docker/compose.yaml with Compose v1's own parser (`docker-compose config`, no
# engine needed); CI installs it so that check runs there, elsewhere it runs where docker-compose is present.
capa_require_compose_validator() {
  if command -v docker-compose >/dev/null 2>&1 || [ -z "${CI:-}" ]; then return; fi
  capa_log "installing docker-compose to validate docker/compose.yaml (apt-get)"
  capa_apt_install docker-compose
}

# $1 = "always" runs npm ci unconditionally (CI: a fresh clone); otherwise only when node_modules is missing.
capa_install_dependencies() {
  if [ "${1:-}" = "always" ] || [ ! -d node_modules ]; then
    capa_log "installing npm dependencies (npm ci)"
    npm ci --no-audit --no-fund
  fi
}

# apt-get install, through sudo when not root; `apt-get update` once per run.
capa_apt_install() {
  if [ -z "${CAPA_APT_UPDATED:-}" ]; then
    capa_as_root apt-get update -q
    CAPA_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive capa_as_root apt-get install -y -q "$@"
}

# A python3 that imports grpc and protobuf: Debian's /usr/bin/python3 first (another python3 may come first on PATH).
capa_python() {
  local candidate
  for candidate in /usr/bin/python3 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import grpc, google.protobuf' >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# What the Python SDK (clients/python) needs to be generated and tested: protoc + grpc_python_plugin for the
# stubs' staleness check, python3-grpcio + python3-protobuf for its test suite. Installed only when missing.
capa_require_python_sdk_tools() {
  local missing=()
  command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
  command -v grpc_python_plugin >/dev/null 2>&1 || missing+=(protobuf-compiler-grpc)
  capa_python >/dev/null || missing+=(python3 python3-grpcio python3-protobuf)
  if [ "${#missing[@]}" -gt 0 ]; then
    capa_log "installing ${missing[*]} (apt-get)"
    capa_apt_install "${missing[@]}"
  fi
}
