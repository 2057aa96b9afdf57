/**
 * `npm run bench:fleet` — fleet scale: one scheduler (child process) on a real nats-server, followed by 1,000 and
 * 10,000 fake agents (fleet-gen.ts, in a child process of their own) that speak the real agent protocol at the
 * real periods (heartbeat 2 s, advert 10 s, advert TTL 30 s). Per size, over a window (default 60 s, longer than
 * the 30 s loss timeout): the scheduler's CPU as % of one core, its RSS, false "lost" agents (none of the fake
 * agents ever stops, so every loss is false), and whether jobs still place (1-GPU jobs submitted during the
 * window, submit → PLACED latency). Then the real agent's idle footprint: one `startAgent` process with 8
 * simulated GPUs and no tasks, its RSS and CPU over the window. Figures, not a test.
 * Flags: --json, --sizes 1000,10000, --window-s N (60), --jobs N (200), --no-idle-agent, --cpu-prof (profiles the
 * scheduler of the largest size and prints its top self-time functions).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import * as pb from "@capa/api";
import { BUCKETS, connectBus, decode } from "@capa/bus";
import { freePort, startNatsServer } from "@capa/testkit";
import { credentials } from "@grpc/grpc-js";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { benchAdmin, rpc, spawnChild, stopChild } from "./e2e-children.js";
import { cpuTimes, loadLine, memory, percentile, topCosts } from "./e2e-stats.js";

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

export interface FleetResult {
  agents: number;
  listed: number;
  joinS: number;
  windowS: number;
  schedulerCpuPct: number;
  schedulerRssMb: number;
  generatorCpuPct: number;
  natsCpuPct: number;
  falseLost: number;
  jobs: number;
  placed: number;
  placeP50Ms: number;
  placeP99Ms: number;
}

async function runFleet(count: number, windowMs: number, jobs: number, profDir?: string): Promise<FleetResult> {
  const root = mkdtempSync(join(tmpdir(), "capa-bench-fleet-"));
  const nats = await startNatsServer({ storeDir: join(root, "nats") });
  const children: Awaited<ReturnType<typeof spawnChild>>["child"][] = [];
  try {
    const grpcAddress = `127.0.0.1:${await freePort()}`;
    const { bootstrapToken, metadata } = benchAdmin();
    const sched = await spawnChild(
      "scheduler",
      { natsUrl: nats.url, grpcAddress, dataDir: join(root, "scheduler"), bootstrapToken },
      profDir ? ["--cpu-prof", "--cpu-prof-dir", profDir] : [],
    );
    children.push(sched.child);
    const nc = await connectBus({ servers: nats.url, name: "bench-fleet" });
    const js = jetstream(nc);
    // Agent records as the scheduler persists them (join, loss, return): counted from KV, not from its API.
    const agentKv = await new Kvm(js).open(BUCKETS.agents);
    const known = new Set<string>();
    const lost = new Set<string>();
    const agentWatch = await agentKv.watch({ key: ">" });
    void (async () => {
      for await (const e of agentWatch) {
        if (e.operation !== "PUT") continue;
        known.add(e.key);
        if ((JSON.parse(new TextDecoder().decode(e.value)) as { lost?: boolean }).lost) lost.add(e.key);
      }
    })();
    const tJoin = performance.now();
    const fleet = await spawnChild("fleet", {
      natsUrl: nats.url,
      count,
      prefix: "fake-",
      regions: ["eu-west", "us-east"],
      gpusPerAgent: 8,
      heartbeatMs: 2_000,
      advertMs: 10_000,
    });
    children.push(fleet.child);
    const joinDeadline = Date.now() + 300_000;
    while (known.size < count && Date.now() < joinDeadline) await sleep(250);
    const joinS = (performance.now() - tJoin) / 1000;
    await sleep(5_000); // let the join burst (one KV write per new agent) pass

    const jobKv = await new Kvm(js).open(BUCKETS.jobs);
    const placedAt = new Map<string, number>();
    const jobWatch = await jobKv.watch({ key: "*", include: "updates" });
    void (async () => {
      for await (const e of jobWatch) {
        if (e.operation !== "PUT" || placedAt.has(e.key)) continue;
        const job = decode.job(e.value);
        if (job.tasks.every((t) => t.agentId !== "")) placedAt.set(job.id, performance.now());
      }
    })();
    const pids = { sched: sched.child.pid!, fleet: fleet.child.pid!, nats: nats.process.pid! };
    const before = { sched: cpuTimes(pids.sched), fleet: cpuTimes(pids.fleet), nats: cpuTimes(pids.nats) };
    const t0 = performance.now();
    const client = new pb.JobServiceClient(grpcAddress, credentials.createInsecure());
    const spec = pb.JobSpec.fromPartial({
      kind: pb.JobKind.JOB_KIND_BATCH,
      replicas: 1,
      gpusPerReplica: 1,
      template: { command: ["true"], env: {}, workingDir: "", killGraceSeconds: 2 },
    });
    const submittedAt = new Map<string, number>();
    // Spread over the first half of the window: placement keeps working while the fleet keeps talking.
    for (let i = 0; i < jobs; i++) {
      const start = performance.now();
      const res = await rpc<pb.SubmitJobResponse>((cb) =>
        // A deadline keeps the window bounded when the scheduler is overloaded (a hung submit counts as not placed).
        client.submitJob(
          { requestId: `fleet-${i}`, tenant: "fleet", spec },
          metadata,
          { deadline: Date.now() + 10_000 },
          cb,
        ),
      ).catch(() => undefined);
      if (res?.job) submittedAt.set(res.job.id, start);
      await sleep(windowMs / 2 / jobs);
    }
    const rest = windowMs - (performance.now() - t0);
    if (rest > 0) await sleep(rest);
    const windowActual = performance.now() - t0;
    const after = { sched: cpuTimes(pids.sched), fleet: cpuTimes(pids.fleet), nats: cpuTimes(pids.nats) };
    const rss = memory(pids.sched).rssMb;
    client.close();
    agentWatch.stop();
    jobWatch.stop();
    await nc.close();
    const latencies = [...submittedAt]
      .filter(([id]) => placedAt.has(id))
      .map(([id, at]) => placedAt.get(id)! - at)
      .sort((a, b) => a - b);
    const pct = (a: { ownMs: number }, b: { ownMs: number }) => round(((b.ownMs - a.ownMs) / windowActual) * 100);
    return {
      agents: count,
      listed: known.size,
      joinS: round(joinS),
      windowS: round(windowActual / 1000),
      schedulerCpuPct: pct(before.sched, after.sched),
      schedulerRssMb: round(rss, 0),
      generatorCpuPct: pct(before.fleet, after.fleet),
      natsCpuPct: pct(before.nats, after.nats),
      falseLost: lost.size,
      jobs: submittedAt.size,
      placed: latencies.length,
      placeP50Ms: round(percentile(latencies, 50)),
      placeP99Ms: round(percentile(latencies, 99)),
    };
  } finally {
    await Promise.allSettled(children.map((c) => stopChild(c)));
    await nats.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** One real agent, idle (no tasks), beside a scheduler: its RSS and CPU over the window. */
async function runIdleAgent(windowMs: number): Promise<{ rssMb: number; peakRssMb: number; cpuPct: number }> {
  const root = mkdtempSync(join(tmpdir(), "capa-bench-idle-"));
  const nats = await startNatsServer({ storeDir: join(root, "nats") });
  const children: Awaited<ReturnType<typeof spawnChild>>["child"][] = [];
  try {
    const grpcAddress = `127.0.0.1:${await freePort()}`;
    children.push(
      (await spawnChild("scheduler", { natsUrl: nats.url, grpcAddress, dataDir: join(root, "scheduler") })).child,
    );
    const agent = await spawnChild("agents", {
      natsUrl: nats.url,
      ids: ["idle-1"],
      gpus: "8xH100-80GB",
      region: "eu-west",
      workRoot: join(root, "agents"),
    });
    children.push(agent.child);
    await sleep(10_000); // past start-up (module loading, first advert, assignment watch)
    const pid = agent.child.pid!;
    const before = cpuTimes(pid);
    const t0 = performance.now();
    await sleep(windowMs);
    const after = cpuTimes(pid);
    const mem = memory(pid);
    return {
      rssMb: round(mem.rssMb),
      peakRssMb: round(mem.peakMb),
      cpuPct: round(((after.ownMs - before.ownMs) / (performance.now() - t0)) * 100, 2),
    };
  } finally {
    await Promise.allSettled(children.map((c) => stopChild(c)));
    await nats.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const json = process.argv.includes("--json");
  const sizes = (flag("--sizes") ?? "1000,10000").split(",").map(Number);
  const windowMs = Number(flag("--window-s") ?? 60) * 1000;
  const jobs = Number(flag("--jobs") ?? 200);
  console.log(
    `capa fleet benchmark — node ${process.version}, ${cpus()[0]?.model ?? "cpu"} ×${availableParallelism()}; ${loadLine()} at start`,
  );
  console.log("fake agents: real protocol via @capa/bus, heartbeat 2 s, advert 10 s, TTL 30 s, 8 × H100 each");
  const profDir = process.argv.includes("--cpu-prof") ? mkdtempSync(join(tmpdir(), "capa-bench-prof-")) : undefined;
  const largest = Math.max(...sizes);
  const runs: FleetResult[] = [];
  for (const size of sizes) {
    process.stderr.write(`running ${size} fake agents for ${windowMs / 1000} s\n`);
    runs.push(await runFleet(size, windowMs, jobs, size === largest ? profDir : undefined));
  }
  const rows: [string, (r: FleetResult) => string][] = [
    ["agents listed (KV) / join s", (r) => `${r.listed} / ${r.joinS}`],
    ["scheduler CPU % of one core", (r) => `${r.schedulerCpuPct}`],
    ["scheduler RSS MB", (r) => `${r.schedulerRssMb}`],
    ["false lost agents", (r) => `${r.falseLost}`],
    ["jobs placed / submitted", (r) => `${r.placed} / ${r.jobs}`],
    ["submit → placed p50 / p99 ms", (r) => `${r.placeP50Ms} / ${r.placeP99Ms}`],
    ["generator CPU % (its own process)", (r) => `${r.generatorCpuPct}`],
    ["nats-server CPU %", (r) => `${r.natsCpuPct}`],
    ["window s", (r) => `${r.windowS}`],
  ];
  const header = ["figure", ...runs.map((r) => `${r.agents} agents`)];
  const cells = [header, ...rows.map(([label, f]) => [label, ...runs.map(f)])];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  console.log("");
  console.log(
    cells.map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join("  ")).join("\n"),
  );
  let profile: ReturnType<typeof topCosts> | undefined;
  const file = profDir && readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
  if (profDir && file) {
    profile = topCosts(readFileSync(join(profDir, file), "utf8"), 25);
    console.log(`\nscheduler profile at ${largest} agents (${join(profDir, file)}), top self time:`);
    for (const p of profile) console.log(`${String(p.sharePct).padStart(5)}%  ${p.fn}  ${p.where}`);
  }
  let idle: Awaited<ReturnType<typeof runIdleAgent>> | undefined;
  if (!process.argv.includes("--no-idle-agent")) {
    process.stderr.write(`measuring one idle real agent for ${windowMs / 1000} s\n`);
    idle = await runIdleAgent(windowMs);
    console.log(
      `\nidle real agent (startAgent, 8 simulated H100, no tasks): RSS ${idle.rssMb} MB (peak ${idle.peakRssMb} MB), CPU ${idle.cpuPct} % of one core`,
    );
  }
  console.log(`\n${loadLine()} at end`);
  if (json)
    console.log(JSON.stringify({ runs, ...(idle ? { idleAgent: idle } : {}), ...(profile ? { profile } : {}) }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
