/**
 * Retries end to end: a real nats-server, the scheduler over gRPC and two real agents running real processes.
 * A command that fails twice and then succeeds ends SUCCEEDED after 3 attempts, each attempt visible with its
 * exit code and agent; a training gang whose member fails restarts as a whole; with no retries left the job fails.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentHandle, startAgent } from "@capa/agent";
import * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  finalJob,
  H100_PRICE,
  type Harness,
  rpc,
  silent,
  spec,
  startHarness,
  stateName,
  submit,
} from "./scheduler-harness.js";

const AGENTS = ["retry-agent-1", "retry-agent-2"];

describe("retries with real agents", () => {
  let h: Harness;
  const agents: AgentHandle[] = [];
  let dir: string;

  beforeAll(async () => {
    h = await startHarness();
    dir = mkdtempSync(join(tmpdir(), "capa-e2e-retries-"));
    for (const agentId of AGENTS) {
      agents.push(
        await startAgent({
          ...(await h.agentNats(agentId, "eu-west")),
          agentId,
          region: "eu-west",
          prices: [H100_PRICE],
          simulateGpus: "2xH100-80GB",
          workDir: join(dir, agentId),
          advertIntervalMs: 500,
          heartbeatIntervalMs: 200,
          advertTtlSeconds: 10,
          logger: silent,
        }),
      );
    }
    await waitFor(
      async () => {
        const r = await rpc<pb.ListAgentsResponse>((cb) =>
          h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb),
        );
        return AGENTS.every((id) => r.agents.some((a) => a.agentId === id && a.status === "ready"));
      },
      { what: "both agents registered" },
    );
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A shell command that counts its runs in `counter` and exits 0 only from run `succeedOn` on. */
  const flaky = (counter: string, succeedOn: number) => [
    "sh",
    "-c",
    `n=$(cat ${counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${counter}; echo "run $n"; ` +
      `if [ $n -lt ${succeedOn} ]; then exit 3; fi`,
  ];

  const final = (jobId: string) => finalJob(h, jobId, 45_000);

  it("fails twice, then succeeds: SUCCEEDED after 3 attempts, each one recorded", async () => {
    const counter = join(dir, "flaky-count");
    const { job } = await submit(
      h,
      spec({ name: "flaky", retries: { max: 3, backoffSeconds: 0, on: ["failed"] } }, flaky(counter, 3)),
    );
    const done = await final(job!.id);
    expect(stateName(done.state)).toBe("SUCCEEDED");
    expect(readFileSync(counter, "utf8").trim()).toBe("3");
    expect(done.attempt).toBe(3);
    expect(done.attempts.map((a) => [a.number, a.outcome, a.exitCode, a.taskId])).toEqual([
      [1, "failed", 3, `${job!.id}-0`],
      [2, "failed", 3, `${job!.id}-0`],
      [3, "succeeded", 0, `${job!.id}-0`],
    ]);
    for (const a of done.attempts) {
      expect(AGENTS).toContain(a.agentId);
      expect(a.finishedAtMs).toBeGreaterThanOrEqual(a.startedAtMs);
    }
    expect(done.attempts[0]!.reason).toBe(`task ${job!.id}-0 exited with code 3`);
  });

  it("a training gang restarts as a whole when a member fails", async () => {
    const counters = [join(dir, "gang-0"), join(dir, "gang-1")];
    // Replica 0 fails on its first run only, once replica 1 is surely running (its counter written); replica 1
    // always succeeds after a moment, so the failure finds it running and the gang restart must stop it.
    const script =
      `c=${dir}/gang-$CAPA_REPLICA; n=$(cat $c 2>/dev/null || echo 0); n=$((n+1)); echo $n > $c; ` +
      `if [ "$CAPA_REPLICA" = 0 ] && [ $n = 1 ]; then ` +
      `i=0; while [ ! -s ${dir}/gang-1 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; exit 7; fi; sleep 2`;
    const { job } = await submit(
      h,
      spec(
        {
          name: "gang",
          kind: pb.JobKind.JOB_KIND_TRAINING,
          replicas: 2,
          retries: { max: 1, backoffSeconds: 1, on: ["failed"] },
        },
        ["sh", "-c", script],
      ),
    );
    const done = await final(job!.id);
    expect(stateName(done.state)).toBe("SUCCEEDED");
    // Both members ran twice: the whole gang restarted, not just the failed member.
    expect(counters.map((c) => readFileSync(c, "utf8").trim())).toEqual(["2", "2"]);
    expect(done.attempts.map((a) => [a.number, a.outcome, a.exitCode])).toEqual([
      [1, "failed", 7],
      [2, "succeeded", 0],
    ]);
  });

  it("no retries left: FAILED, the reason counts the attempts", async () => {
    const counter = join(dir, "never");
    const { job } = await submit(
      h,
      spec({ name: "never", retries: { max: 1, backoffSeconds: 0, on: ["failed"] } }, flaky(counter, 99)),
    );
    const done = await final(job!.id);
    expect(stateName(done.state)).toBe("FAILED");
    expect(done.reason).toBe(`task ${job!.id}-0 exited with code 3; attempt 2 of 2, no retries left`);
    expect(done.attempts.map((a) => a.outcome)).toEqual(["failed", "failed"]);
  });

  it("refuses a bad retry policy with the field path", async () => {
    const err = await submit(h, spec({ retries: { max: 1, backoffSeconds: 0, on: ["crashed"] } })).catch((e) => e);
    expect(err.code).toBe(3);
    expect(err.details).toContain("spec.retries.on[0]: must be one of failed, lost, preempted");
  });
});
