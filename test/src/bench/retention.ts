/**
 * `npm run bench:retention`: the scheduler's memory against its history. On a real nats-server it measures the
 * scheduler process's RSS and heap (after a GC) with an empty store (the baseline, same process), then with N final
 * jobs (default 100 000, `--jobs N`) loaded from KV, then after the retention sweep removed them (they finished
 * two hours ago, the retention is one hour), and prints the three and their ratios. Figures, not a pass/fail test.
 * Run with `node --expose-gc` (the npm script does) so the figures are after a collection.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectBus, encode, ensureStore } from "@capa/bus";
import { defaultJobSpec, type Job, newTask } from "@capa/domain";
import { startScheduler } from "@capa/scheduler";
import { startNatsServer, waitFor } from "@capa/testkit";
import { pino } from "pino";

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface Sample {
  rssMiB: number;
  heapMiB: number;
}

async function sample(): Promise<Sample> {
  for (let i = 0; i < 3; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = process.memoryUsage();
  return { rssMiB: Math.round(m.rss / 1048576), heapMiB: Math.round(m.heapUsed / 1048576) };
}

function finishedJob(i: number, finishedAtMs: number): Job {
  const id = `jbench${String(i).padStart(10, "0")}`;
  const task = {
    ...newTask(id, 0),
    state: "succeeded" as const,
    finishedAtMs,
    agentId: "bench-agent",
    region: "eu-west",
  };
  return {
    id,
    tenant: `tenant-${i % 50}`,
    requestId: `req-${i}`,
    spec: defaultJobSpec({
      name: `bench-${i}`,
      template: {
        command: ["python", "train.py", "--epoch", String(i)],
        env: {},
        workingDir: "",
        killGraceSeconds: 10,
      },
    }),
    state: "succeeded",
    reason: "all tasks succeeded",
    tasks: [task],
    createdAtMs: finishedAtMs - 60_000,
    updatedAtMs: finishedAtMs,
    finishedAtMs,
    cancelRequested: false,
    spent: 1_000,
    reserved: 0,
  };
}

async function main(): Promise<void> {
  const count = Number(flag("--jobs") ?? 100_000);
  const logger = pino({ level: "silent" });
  const nats = await startNatsServer();
  const dataDir = mkdtempSync(join(tmpdir(), "capa-bench-retention-"));
  const nc = await connectBus({ servers: nats.url, name: "bench-retention" });
  const store = await ensureStore(nc);
  const config = { natsUrl: nats.url, dataDir, grpcAddress: "127.0.0.1:0", logger, leaseTtlMs: 3_000 };
  try {
    const empty = await startScheduler({ ...config, retentionMs: 3_600_000 });
    await waitFor(() => empty.isLeader(), { what: "leader" });
    const baseline = await sample();
    await empty.stop();

    const finishedAtMs = Date.now() - 2 * 3_600_000;
    const started = Date.now();
    for (let i = 0; i < count; i += 500) {
      const batch = [];
      for (let j = i; j < Math.min(count, i + 500); j++) {
        const job = finishedJob(j, finishedAtMs);
        batch.push(store.jobs.put(job.id, encode.job(job)));
      }
      await Promise.all(batch);
    }
    const wroteSeconds = (Date.now() - started) / 1000;

    // The first sweep runs one interval after the leader starts: long enough to measure the loaded state first.
    const loadedAt = Date.now();
    const scheduler = await startScheduler({
      ...config,
      retentionMs: 3_600_000,
      retentionSweepIntervalMs: 20_000,
      retentionBatch: count,
    });
    const loadSeconds = (Date.now() - loadedAt) / 1000;
    const loaded = await sample();
    const lastId = finishedJob(count - 1, finishedAtMs).id;
    const sweepStarted = Date.now();
    await waitFor(
      async () => {
        const e = await store.jobs.get(lastId);
        return !e || e.operation !== "PUT";
      },
      { what: "the retention sweep removed every finished job", timeoutMs: 900_000, intervalMs: 1_000 },
    );
    const sweepSeconds = (Date.now() - sweepStarted) / 1000;
    await new Promise((r) => setTimeout(r, 2_000));
    const compacted = await sample();
    await scheduler.stop();

    const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : "-");
    console.log(
      `capa retention benchmark — ${count} final jobs, node ${process.version}, GC ${"gc" in globalThis ? "on" : "off"}`,
    );
    console.log(
      `wrote ${count} jobs to KV in ${wroteSeconds.toFixed(1)} s; scheduler loaded them in ${loadSeconds.toFixed(1)} s; the sweep removed them in ${sweepSeconds.toFixed(1)} s (incl. waiting for its first run)`,
    );
    console.log("state                              RSS MiB  heap MiB  RSS vs empty");
    for (const [name, s] of [
      ["empty store (baseline)", baseline],
      [`${count} finished jobs loaded`, loaded],
      ["after the retention sweep", compacted],
    ] as const)
      console.log(
        `${name.padEnd(34)} ${String(s.rssMiB).padStart(7)}  ${String(s.heapMiB).padStart(8)}  ${ratio(s.rssMiB, baseline.rssMiB).padStart(12)}`,
      );
    console.log(
      JSON.stringify({
        jobs: count,
        baseline,
        loaded,
        compacted,
        heapRatioAfterSweep: Number(ratio(compacted.heapMiB, baseline.heapMiB)),
      }),
    );
  } finally {
    await nc.close();
    await nats.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
