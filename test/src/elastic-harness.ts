/**
 * Shared by the elastic gang e2e tests: one-GPU in-process agents (the first `blockers` labelled pool=blocker, so
 * a blocker job can hold their GPUs while a gang starts on the others), and waiting for a gang generation.
 */
import { join } from "node:path";
import { type AgentHandle, startAgent } from "@capa/agent";
import * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import { getJob, H100_PRICE, type Harness, silent, spec, stateName, submit } from "./scheduler-harness.js";

export async function startElasticAgents(
  h: Harness,
  root: string,
  region: string,
  ids: readonly string[],
  blockers: number,
): Promise<AgentHandle[]> {
  const agents: AgentHandle[] = [];
  for (const [i, agentId] of ids.entries()) {
    agents.push(
      await startAgent({
        ...(await h.agentNats(agentId, region)),
        agentId,
        region,
        prices: [H100_PRICE],
        labels: i < blockers ? { pool: "blocker" } : {},
        simulateGpus: "1xH100-80GB",
        workDir: join(root, agentId),
        advertIntervalMs: 500,
        heartbeatIntervalMs: 200,
        advertTtlSeconds: 10,
        logger: silent,
      }),
    );
  }
  return agents;
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
