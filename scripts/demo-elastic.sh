# Sourced by scripts/demo.sh (uses its capa, step, json_field, wait_final): an elastic training gang submitted
# from a job file starts with 2 workers while another job holds half of eu-west's H100s, and grows to 4 once that
# job is cancelled; every generation's workers print the torchrun env they got.
printf '\n\033[1man elastic training gang\033[0m\n'
# Waits (at most 120 s) until the JSON of `capa status JOB --json` satisfies a JS condition on `j`; gives up
# early when the job is final (exit 2 from the check).
wait_job() {
  local deadline=$((SECONDS + 120)) rc=0
  while [ "$SECONDS" -lt "$deadline" ]; do
    rc=0
    capa status "$1" --json | node -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{const j=JSON.parse(t);process.exit(('"$2"')?0:["succeeded","failed","cancelled"].includes(j.state)?2:1)})' || rc=$?
    if [ "$rc" -eq 0 ]; then return 0; fi
    if [ "$rc" -eq 2 ]; then echo "($1 ended before: $2)"; return 0; fi
    sleep 0.5
  done
  echo "(timed out waiting for: $2)"
}
RUNNING_AT='(n)=>j.rendezvous&&j.rendezvous.size===n&&!j.rendezvous.changing&&j.tasks.filter(t=>t.replica<n).every(t=>t.state==="running")'

printf '\n\033[1m$ capa submit --name hold-4 --gpus 4 --gpu-model H100-80GB --region eu-west -- sleep 600\033[0m\n'
HOLD=$(capa submit --json --name hold-4 --gpus 4 --gpu-model H100-80GB --region eu-west -- sleep 600 | json_field job.id)
echo "submitted job $HOLD (holds one eu-west agent's 4 H100s)"
wait_job "$HOLD" 'j.state==="running"'

printf '\n\033[1m$ cat examples/train-elastic.yaml\033[0m\n'
cat examples/train-elastic.yaml
printf '\n\033[1m$ capa submit -f examples/train-elastic.yaml\033[0m\n'
ELASTIC=$(capa submit --json -f examples/train-elastic.yaml | json_field job.id)
echo "submitted job $ELASTIC"
wait_job "$ELASTIC" "($RUNNING_AT)(2)"
step status "$ELASTIC"

step cancel "$HOLD" --reason "make room for the elastic gang"
printf '\n\033[1m%s is cancelled: its 4 GPUs free up and the gang grows to 4 workers\033[0m\n' "$HOLD"
wait_final "$HOLD"
wait_job "$ELASTIC" "($RUNNING_AT)(4)"
step status "$ELASTIC"
step explain "$ELASTIC"
wait_final "$ELASTIC"
step logs "$ELASTIC"
