#!/usr/bin/env bash
# `npm test`: what CI runs, and the first command that works on a fresh clone. Like `npm run demo` it first
# installs what is missing (npm dependencies when node_modules is absent; nats-server, protoc with the gRPC
# Python plugin, python3-grpcio, python3-protobuf and chromium from apt when they are missing), then: the proto staleness
# checks (TypeScript and Python stubs), the buf breaking check, the build, lint and every vitest suite (the Python
# SDK's included). Arguments go to vitest (`npm test -- test/src/api-hygiene.test.ts`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bootstrap.sh
source scripts/bootstrap.sh

capa_require_node
capa_require_nats_server
capa_require_python_sdk_tools
capa_require_chromium
capa_install_dependencies
npm run --silent proto:check
npm run --silent proto:breaking
npm run --silent build
npm run --silent lint
exec npx vitest run "$@"
