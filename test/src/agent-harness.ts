/**
 * Helpers for suites that run the built `capa agent` as a child process without a scheduler: the test writes the
 * agent's assignment key itself (as the scheduler's plan applier does) and watches the task processes.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { subjects } from "@capa/bus";
import type { TaskAssignment } from "@capa/domain";
import type { NatsConnection } from "@nats-io/transport-node";
import { exited, startCapa } from "./cli-harness.js";

/** A marker file's lines (none before it exists): what a task's traps wrote down. */
export const markerLines = (path: string): string[] =>
  existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean) : [];

/** A `sh -c script` task on one GPU, epoch 1, as the scheduler's plan applier lists it. */
export function shellAssignment(
  taskId: string,
  gpuIndex: number,
  script: string,
  killGraceSeconds: number,
): TaskAssignment {
  return {
    taskId,
    jobId: `job-${taskId}`,
    replica: 0,
    gpuIndices: [gpuIndex],
    template: { command: ["sh", "-c", script], env: {}, workingDir: "", killGraceSeconds },
    epoch: 1,
    pricePerGpuHour: 2_000_000,
    tenant: "acme",
    assignedAtMs: Date.now(),
    stop: false,
    stopReason: "",
  };
}

/**
 * Starts `capa agent` on simulated GPUs (2 H100s, 200 ms heartbeats) and resolves at its first heartbeat, seen on
 * `nc`; rejects if it exits first. `args` adds or overrides flags.
 */
export async function startAgentUntilHeartbeat(
  nc: NatsConnection,
  o: { natsUrl: string; agentId: string; region: string; workDir: string; args?: readonly string[] },
): Promise<ReturnType<typeof startCapa>> {
  const heartbeat = (async () => {
    for await (const m of nc.subscribe(subjects.heartbeat(o.region, o.agentId), { max: 1 })) return m.data;
  })();
  const agent = startCapa([
    "agent",
    ...["--nats-url", o.natsUrl, "--id", o.agentId, "--region", o.region],
    ...["--simulate-gpus", "2xH100-80GB", "--price", "H100-80GB=2.00", "--work-dir", o.workDir],
    ...["--heartbeat-interval", "200ms", "--log-level", "warn"],
    ...(o.args ?? []),
  ]);
  await Promise.race([
    heartbeat,
    exited(agent.child).then((e) => {
      throw new Error(`capa agent exited ${e.code ?? e.signal}: ${agent.output().stderr}`);
    }),
  ]);
  return agent;
}

/** After an agent test: SIGKILLs the agent if it still runs, and whatever is left of its tasks' process groups. */
export async function killAgentAndTasks(agent: ChildProcess | undefined, groups: Iterable<number>): Promise<void> {
  if (agent && agent.exitCode === null && agent.signalCode === null) {
    agent.kill("SIGKILL");
    await exited(agent);
  }
  for (const group of groups) {
    try {
      process.kill(-group, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
