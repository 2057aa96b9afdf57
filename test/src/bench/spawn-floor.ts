/**
 * `npm run bench:spawn-floor` — the floor under bench:e2e's jobs/s on this machine: the CPU it takes just to
 * start and reap one `true` process from Node (what every task of the end-to-end benchmark costs the agent's
 * supervisor and the kernel, before any NATS message, KV write or scheduler work), 8 at a time as the agents run
 * them. The end-to-end target (1,500 jobs/s on 2 cores) leaves 1.33 ms of CPU per job for everything; if this
 * alone costs more, the target cannot be met with real processes on this machine. Figures, not a test.
 * Flags: --tasks N (2000), --concurrency N (8), --json.
 */
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { cpuTimes, loadLine } from "./e2e-stats.js";

const flag = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const tasks = Number(flag("--tasks") ?? 2000);
const concurrency = Number(flag("--concurrency") ?? 8);

function runTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("true", [], { stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", () => resolve());
  });
}

async function main(): Promise<void> {
  console.log(`capa spawn floor — node ${process.version}, ${availableParallelism()} CPUs; ${loadLine()} at start`);
  const before = cpuTimes(process.pid);
  const t0 = performance.now();
  let started = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < tasks) {
        started++;
        await runTrue();
      }
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  const after = cpuTimes(process.pid);
  const parentMs = (after.ownMs - before.ownMs) / tasks;
  const childMs = (after.childrenMs - before.childrenMs) / tasks;
  const result = {
    tasks,
    concurrency,
    perSecond: Math.round(tasks / wallS),
    parentCpuMsPerTask: Number(parentMs.toFixed(2)),
    childCpuMsPerTask: Number(childMs.toFixed(2)),
    cpuMsPerTask: Number((parentMs + childMs).toFixed(2)),
    maxTasksPerSecondOnAllCpus: Math.round((availableParallelism() * 1000) / (parentMs + childMs)),
  };
  console.log(`${tasks} \`true\` processes, ${concurrency} at a time, in ${wallS.toFixed(2)} s: ${result.perSecond}/s`);
  console.log(
    `CPU per task: ${result.parentCpuMsPerTask} ms in the Node parent + ${result.childCpuMsPerTask} ms in the child` +
      ` = ${result.cpuMsPerTask} ms (at most ${result.maxTasksPerSecondOnAllCpus}/s if every CPU did nothing else)`,
  );
  console.log(`${loadLine()} at end`);
  if (process.argv.includes("--json")) console.log(JSON.stringify(result));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
