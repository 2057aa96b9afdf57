/**
 * SIGKILL the `capa agent` process running a task, `rounds` times. Per round: a one-GPU sleeper runs on an agent
 * of the home region; its agent is SIGKILLed at t0; the job's event stream (server-stamped `atMs`) says when
 * the scheduler declared the task lost (detection) and when it placed it on another agent (re-placement).
 * A duplicate run is a second run of the task starting while the first run's process is still alive (the
 * killed agent's task supervisor must have killed it); a lost task is one never running again.
 * The killed agent is restarted (same id and work dir) before the next round.
 */
import * as pb from "@capa/api";
import { isAlive, waitFor } from "@capa/testkit";
import { type Figure, none, percentile, withinSeconds } from "../report.js";
import type { ChaosStack } from "../stack.js";
import { jobWhen, runningSleeper, runsOf } from "../workload.js";

const FAULT = "SIGKILL an agent running a task";

export interface AgentKillResult {
  figures: Figure[];
  detectionMs: number[];
  replacementMs: number[];
  runningAgainMs: number[];
  lost: number;
  duplicates: number;
}

const onAgent = (job: pb.Job, agentId: string, state: pb.TaskState) =>
  job.tasks[0]?.agentId === agentId && job.tasks[0]?.state === state;

export async function agentKill(
  stack: ChaosStack,
  rounds: number,
  log: (line: string) => void,
): Promise<AgentKillResult> {
  const client = stack.client();
  const r: AgentKillResult = {
    figures: [],
    detectionMs: [],
    replacementMs: [],
    runningAgainMs: [],
    lost: 0,
    duplicates: 0,
  };
  try {
    for (let round = 1; round <= rounds; round++) {
      const { jobId, task } = await runningSleeper(
        client,
        stack.marks,
        stack.home,
        `agent-kill-${round}-${Date.now()}`,
      );
      const victim = stack.agents.find((a) => a.agentId === task.agentId)!;
      const [firstPid] = await waitFor(() => runsOf(stack.marks, task.id).length > 0 && runsOf(stack.marks, task.id), {
        what: "the first run's pid",
      });
      // Follow the job from the server's side before the fault, so no transition is missed.
      const events: pb.JobEvent[] = [];
      const stream = client.watchJob({ jobId });
      const following = (async () => {
        try {
          for await (const e of stream) events.push(e as pb.JobEvent);
        } catch {
          // ended by the cancel below
        }
      })();
      await waitFor(() => events.length > 0, { what: "the watch's first event" });
      const t0 = Date.now();
      await victim.kill("SIGKILL");
      let duplicate = false;
      try {
        const again = await jobWhen(
          client,
          jobId,
          (j) => j.tasks[0]!.epoch > task.epoch && j.tasks[0]!.state === pb.TaskState.TASK_STATE_RUNNING,
          "the task running again elsewhere",
          60_000,
        );
        // Its second run has started (it is RUNNING): the first run's process must be gone by now.
        await waitFor(() => runsOf(stack.marks, task.id).length >= 2, { what: "the second run's pid" });
        duplicate = isAlive(firstPid!);
        await waitFor(
          () =>
            events.some(
              (e) =>
                e.job &&
                e.job.tasks[0]!.epoch > task.epoch &&
                e.job.tasks[0]!.state === pb.TaskState.TASK_STATE_RUNNING,
            ),
          { timeoutMs: 10_000, what: "the running-again event" },
        );
        const detected = events.find(
          (e) => e.atMs >= t0 && e.job && !onAgent(e.job, victim.agentId, pb.TaskState.TASK_STATE_RUNNING),
        );
        const placed = events.find(
          (e) =>
            e.job &&
            e.job.tasks[0]!.epoch > task.epoch &&
            e.job.tasks[0]!.agentId &&
            e.job.tasks[0]!.agentId !== victim.agentId,
        );
        const runningAgain = events.find(
          (e) =>
            e.job && e.job.tasks[0]!.epoch > task.epoch && e.job.tasks[0]!.state === pb.TaskState.TASK_STATE_RUNNING,
        );
        r.detectionMs.push((detected?.atMs ?? Number.NaN) - t0);
        r.replacementMs.push((placed?.atMs ?? Number.NaN) - t0);
        r.runningAgainMs.push((runningAgain?.atMs ?? Number.NaN) - t0);
        log(
          `  round ${round}: ${victim.agentId} killed; lost after ${r.detectionMs.at(-1)} ms, re-placed on ${again.tasks[0]!.agentId} after ${r.replacementMs.at(-1)} ms, running after ${r.runningAgainMs.at(-1)} ms${duplicate ? ", DUPLICATE RUN" : ""}`,
        );
      } catch (err) {
        r.lost++;
        log(`  round ${round}: task ${task.id} LOST: ${(err as Error).message}`);
      }
      if (duplicate) r.duplicates++;
      // The watch ends with the job's final state.
      await client.cancelJob({ jobId, reason: "chaos round over" }).catch(() => undefined);
      await following;
      await victim.start();
      await stack.waitForAgents();
    }
  } finally {
    client.close();
  }
  r.figures = [
    withinSeconds(FAULT, `detection p99 (${rounds} kills)`, percentile(r.detectionMs, 99), 10),
    withinSeconds(FAULT, "re-placement p99", percentile(r.replacementMs, 99), 12),
    none(FAULT, "lost tasks", r.lost),
    none(FAULT, "duplicate runs", r.duplicates),
  ];
  return r;
}
