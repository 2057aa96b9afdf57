/**
 * Shared by the elastic gang e2e tests: a real nats-server and scheduler, one-GPU in-process agents (the first
 * `blockers` labelled pool=blocker, so a blocker job can hold their GPUs while a gang starts on the others) and
 * one `capa agent` child process (so it can be SIGKILLed), and waiting for a gang generation.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentHandle, startAgent } from "@capa/agent";
import * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import {
  getJob,
  H100_PRICE,
  type Harness,
  logs,
  rpc,
  silent,
  spec,
  startHarness,
  stateName,
  submit,
} from "./scheduler-harness.js";
import { type AgentProcess, startAgentProcess, stopAgentProcess } from "./service-harness.js";

export interface ElasticCluster {
  h: Harness;
  /** Every agent's work dir is `<root>/<agent id>`. */
  root: string;
  agents: AgentHandle[];
  child: AgentProcess;
  stop(): Promise<void>;
}

export interface ElasticClusterOptions {
  /** Temp dir prefix. */
  prefix: string;
  region: string;
  inProcess: readonly string[];
  /** How many of `inProcess` (the first ones) are labelled pool=blocker. */
  blockers: number;
  child: string;
}

/** Starts the cluster and waits until every agent is ready. */
export async function startElasticCluster(o: ElasticClusterOptions): Promise<ElasticCluster> {
  const root = mkdtempSync(join(tmpdir(), o.prefix));
  const h = await startHarness({ agentTimeoutMs: 3_000 });
  const agents: AgentHandle[] = [];
  let child: AgentProcess | undefined;
  const stop = async () => {
    if (child) await stopAgentProcess(child);
    for (const a of agents) await a.stop();
    await h.stop();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (const [i, agentId] of o.inProcess.entries()) {
      agents.push(
        await startAgent({
          ...(await h.agentNats(agentId, o.region)),
          agentId,
          region: o.region,
          prices: [H100_PRICE],
          labels: i < o.blockers ? { pool: "blocker" } : {},
          simulateGpus: "1xH100-80GB",
          workDir: join(root, agentId),
          advertIntervalMs: 500,
          heartbeatIntervalMs: 200,
          advertTtlSeconds: 10,
          logger: silent,
        }),
      );
    }
    child = await startAgentProcess(h, root, o.child, o.region, "2.49", "1xH100-80GB");
    await waitFor(
      async () => {
        const r = await rpc<pb.ListAgentsResponse>((cb) =>
          h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb),
        );
        return [...o.inProcess, o.child].every((id) => r.agents.some((a) => a.agentId === id && a.status === "ready"));
      },
      { timeoutMs: 60_000, what: "every agent ready" },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { h, root, agents, child, stop };
}

/** Submits a job of `replicas` tasks that holds the pool=blocker agents' GPUs until cancelled; once running. */
export async function holdBlockers(h: Harness, replicas: number, timeoutMs: number): Promise<string> {
  const blocker = await submit(
    h,
    spec({ replicas, nodeSelector: { pool: "blocker" } }, ["sh", "-c", "while true; do sleep 0.2; done"]),
  );
  const id = blocker.job!.id;
  await waitFor(async () => stateName((await getJob(h, id)).state) === "RUNNING", {
    timeoutMs,
    what: "blocker running on the blocker agents",
  });
  return id;
}

/** The job once its current generation has `size` workers, all running (returns it). */
export async function generationOf(
  h: Harness,
  jobId: string,
  size: number,
  what: string,
  timeoutMs: number,
): Promise<pb.Job> {
  let job: pb.Job | undefined;
  await waitFor(
    async () => {
      job = await getJob(h, jobId);
      const r = job.rendezvous;
      if (!r || r.size !== size || r.changingReason !== "") return false;
      return job.tasks.filter((t) => t.replica < size).every((t) => t.state === pb.TaskState.TASK_STATE_RUNNING);
    },
    { timeoutMs, intervalMs: 100, what },
  );
  return job!;
}

/** A job's stdout as printed so far (the whole log stream, not followed). */
export async function stdoutOf(h: Harness, jobId: string): Promise<string> {
  const out = logs(h, jobId, false);
  await out.done;
  return out.text(pb.LogStream.LOG_STREAM_STDOUT);
}
