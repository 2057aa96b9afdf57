#!/usr/bin/env bash
# `npm run demo`: bootstrap (dependencies, nats-server, build), start `capa up` in the background, then a
# scripted tour: the fleet and its prices, a 1-GPU batch job and a 2-replica training gang, where they were
# placed and at what price, their logs and final states, then the marketplace: a quote, the order book, the
# tenant's bill, a provider's earnings, and a signed receipt fetched and verified (and a tampered copy refused).
# `capa up` is stopped at the end, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bootstrap.sh
source scripts/bootstrap.sh

capa_require_node
capa_require_nats_server
capa_install_dependencies
capa_log "building (npm run build)"
npm run build --silent

STATE_DIR=.capa/demo
mkdir -p "$STATE_DIR"
capa() { node packages/cli/bin/capa.js "$@"; }
# Reads one field of the JSON document on stdin, e.g. `json_field job.id`.
json_field() {
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv[1].split("."))v=v?.[k];console.log(v??"")})' "$1"
}
step() {
  printf '\n\033[1m$ capa %s\033[0m\n' "$*"
  capa "$@" || printf '(capa %s exited %s)\n' "$1" "$?"
}

capa_log "starting capa up (state in $STATE_DIR, log in $STATE_DIR/capa.log)"
# node itself in the background (not the capa function, whose subshell would get the signal instead).
node packages/cli/bin/capa.js up --json --fresh --state-dir "$STATE_DIR" --grpc-port 0 --http-port 0 \
  >"$STATE_DIR/up.json" 2>"$STATE_DIR/up.err" &
UP_PID=$!
stop_capa_up() {
  if kill -0 "$UP_PID" 2>/dev/null; then
    capa_log "stopping capa up (SIGINT)"
    kill -INT "$UP_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.5; done
    kill -TERM "$UP_PID" 2>/dev/null || true
    wait "$UP_PID" 2>/dev/null || true
    tail -n 1 "$STATE_DIR/up.err" >&2
  fi
}
trap stop_capa_up EXIT

for _ in $(seq 1 240); do
  if [ -s "$STATE_DIR/up.json" ]; then break; fi
  if ! kill -0 "$UP_PID" 2>/dev/null; then
    echo "capa up failed:" >&2
    cat "$STATE_DIR/up.err" >&2
    exit 1
  fi
  sleep 0.5
done
if [ ! -s "$STATE_DIR/up.json" ]; then
  echo "capa up did not become ready in 120 s:" >&2
  cat "$STATE_DIR/up.err" >&2
  exit 1
fi
sed 's/^/  /' "$STATE_DIR/up.err"
CAPA_GRPC_ADDR=$(json_field grpcAddress <"$STATE_DIR/up.json")
CAPA_NATS_URL=$(json_field natsUrl <"$STATE_DIR/up.json")
# Auth is on: tenant verbs run as tenant "default", operator verbs with the admin credential capa up made.
CAPA_CREDENTIALS=$(json_field credentials.tenant <"$STATE_DIR/up.json")
ADMIN_CREDENTIALS=$(json_field credentials.admin <"$STATE_DIR/up.json")
export CAPA_GRPC_ADDR CAPA_NATS_URL CAPA_CREDENTIALS
capa_log "capa is up: export CAPA_GRPC_ADDR=$CAPA_GRPC_ADDR CAPA_NATS_URL=$CAPA_NATS_URL CAPA_CREDENTIALS=$CAPA_CREDENTIALS"
# An operator verb: the same `step`, with the admin credential.
admin_step() { CAPA_CREDENTIALS="$ADMIN_CREDENTIALS" step "$@"; }

step auth whoami
admin_step agents
step offers

# Waits until a job is final (or 120 s pass) and prints its final state.
wait_final() {
  local state=""
  for _ in $(seq 1 240); do
    state=$(capa status "$1" --json | json_field state)
    case "$state" in succeeded | failed | cancelled) break ;; esac
    sleep 0.5
  done
  echo "$1: $state"
}
# Waits until every task of a job has an agent, so `capa status` shows the placement and price.
wait_placed() {
  for _ in $(seq 1 120); do
    local placed
    placed=$(capa status "$1" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(j.tasks.length>0&&j.tasks.every(t=>t.agentId!=="")?"yes":"no")})')
    if [ "$placed" = yes ]; then return; fi
    sleep 0.5
  done
}

printf '\n\033[1m$ capa submit --name hello --gpus 1 --max-price 3.00 -- sh -c ...\033[0m\n'
HELLO=$(capa submit --json --name hello --gpus 1 --max-price 3.00 -- \
  sh -c 'echo "hello from GPU $CUDA_VISIBLE_DEVICES"; sleep 2' | json_field job.id)
echo "submitted job $HELLO"

printf '\n\033[1m$ cat examples/train.yaml\033[0m\n'
cat examples/train.yaml
printf '\n\033[1m$ capa submit -f examples/train.yaml\033[0m\n'
TRAIN=$(capa submit --json -f examples/train.yaml | json_field job.id)
echo "submitted job $TRAIN"

wait_placed "$HELLO"
wait_placed "$TRAIN"
step status "$HELLO"
step status "$TRAIN"
step explain "$TRAIN"

printf '\n\033[1mwaiting for both jobs to finish\033[0m\n'
wait_final "$HELLO"
wait_final "$TRAIN"

step logs "$HELLO"
step logs "$TRAIN"
step jobs

# Settlement follows the final state: wait until both jobs' receipts are in the ledger (3 allocations).
wait_settled() {
  for _ in $(seq 1 60); do
    local n
    n=$(capa receipt list --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).receipts.length))') || n=0
    if [ "$n" -ge "$1" ]; then return; fi
    sleep 0.5
  done
  echo "(only $n of $1 allocations settled so far)"
}

printf '\n\033[1mthe marketplace\033[0m\n'
step quote --gpus 2 --gpu-model H100-80GB --duration 1h
step offers --region 'eu-*'
wait_settled 3
step bill
TRAIN_AGENT=$(capa status "$TRAIN" --json | json_field tasks.0.agentId)
admin_step earnings --agent "$TRAIN_AGENT"
RECEIPT=$(capa receipt list --json --job "$TRAIN" | json_field receipts.0.receiptId)
step receipt get "$RECEIPT" -o "$STATE_DIR/receipt.json"
step receipt verify "$STATE_DIR/receipt.json"
# The same receipt with its amount changed by one micro-dollar: the signature no longer matches.
node -e 'const fs=require("fs");const r=JSON.parse(fs.readFileSync(process.argv[1],"utf8"));r.amount+=1;r.payout+=1;fs.writeFileSync(process.argv[2],JSON.stringify(r,null,2))' \
  "$STATE_DIR/receipt.json" "$STATE_DIR/receipt-tampered.json"
step receipt verify "$STATE_DIR/receipt-tampered.json"

admin_step audit --limit 5

# An elastic training gang from a job file: starts at 2 workers, grows to 4 (scripts/demo-elastic.sh).
. scripts/demo-elastic.sh

# Inference services: a 2-region service, a scale-up under load, a canary promotion (scripts/demo-services.sh).
. scripts/demo-services.sh

printf '\nThe demo is over; capa up stops now. Run it yourself: node packages/cli/bin/capa.js up\n'
