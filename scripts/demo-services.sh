# Sourced by scripts/demo.sh (uses its capa, step, json_field, STATE_DIR): an inference service in two regions
# behind `capa gateway`, a scale-up under load, and a canary rollout promoted region by region.
MODEL="$(pwd)/$STATE_DIR/model.cjs"
cat >"$MODEL" <<'JS'
const http = require("node:http");
http.createServer((req, res) => {
  if (req.url === "/healthz") { res.writeHead(200); res.end("ok"); return; }
  setTimeout(() => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ task: process.env.CAPA_TASK_ID, model: process.env.CAPA_MODEL_VERSION }));
  }, 20);
}).listen(Number(process.env.PORT), "127.0.0.1");
JS
service_apply() {
  step service apply --name echo --region eu-west=1..3 --region us-east=1..2 --gpus 1 --readiness-path /healthz \
    --target-rps 5 --scale-up-window 2 --scale-down-window 60 --canary 10 --pause 2 --min-requests 5 \
    --model-version "$1" -- node "$MODEL"
}
# Waits (at most 90 s) until the JSON of `capa service get echo` satisfies a JS condition on `s`.
wait_service() {
  for _ in $(seq 1 180); do
    if capa service get echo --json | node -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{const s=JSON.parse(t);process.exit(('"$1"')?0:1)})'; then return 0; fi
    sleep 0.5
  done
  echo "(timed out waiting for: $1)"
}
service_apply v1
wait_service 's.state==="SERVICE_STATE_READY"'
step endpoints echo
node packages/cli/bin/capa.js gateway --service echo --region eu-west --port 0 --log-level warn \
  2>"$STATE_DIR/gateway.err" &
GATEWAY_PID=$!
for _ in $(seq 1 100); do
  GATEWAY=$(sed -n 's/.* on http:\/\/\([^ ]*\).*/\1/p' "$STATE_DIR/gateway.err")
  [ -n "$GATEWAY" ] && break
  sleep 0.1
done
printf '\n\033[1m$ capa gateway --service echo --region eu-west --port 0 &   # on %s\033[0m\n' "$GATEWAY"
printf '\n\033[1m$ curl http://%s/\033[0m\n' "$GATEWAY"
node -e 'fetch(process.argv[1]).then(r=>r.text()).then(t=>console.log(t))' "http://$GATEWAY/"
printf '\n\033[1m# 20 req/s into eu-west for 12 s (target 5 req/s per replica)\033[0m\n'
node scripts/demo-load.mjs "$GATEWAY" 20 12
step service get echo
service_apply v2
wait_service 's.rollout&&s.rollout.phase==="ROLLOUT_PHASE_PROGRESSING"&&s.rollout.region==="eu-west"'
step rollout status echo
node scripts/demo-load.mjs "$GATEWAY" 10 4 >/dev/null &
wait_service 's.rollout&&s.rollout.phase==="ROLLOUT_PHASE_PROMOTED"'
step rollout status echo
step endpoints echo
kill "$GATEWAY_PID" 2>/dev/null || true
wait "$GATEWAY_PID" 2>/dev/null || true
step service delete echo
