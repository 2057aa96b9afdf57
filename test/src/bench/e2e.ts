/**
 * `npm run bench:e2e` — end-to-end throughput of the whole system, in one process tree on this machine: a real
 * nats-server (JetStream, file store), one scheduler in a child process, real agents (`startAgent`, simulated
 * GPUs, real task supervisors and `true` processes) in child processes, and concurrent gRPC clients in this
 * process submitting trivial 1-GPU batch jobs. Figures, not a test: nothing passes or fails on speed.
 *
 * Scenarios (all by default): `base` 16 agents × 8 GPUs, 1 tenant; `agents64` 64 agents × 8 GPUs (8 agents per
 * process); `tenants10` 16 agents, jobs spread over 10 tenants. Each submits `--jobs` (2,000) jobs from
 * `--clients` (8) gRPC clients, each on its own channel, closed loop.
 *
 * Measured: jobs/s from the first submit to the last SUCCEEDED (seen on a KV watch of capa_jobs), SubmitJob
 * acks/s and ack latency, submit → final latency, CPU per job of the scheduler process and of the agent
 * processes (and of their children, live or reaped: the task supervisor and tasks), peak RSS, ABORTED (and
 * other) submit errors, lost tasks and jobs never final.
 *
 * Flags: --json (one JSON object as the last line), --scenario base,agents64,tenants10, --jobs N, --clients N,
 *        --cpu-prof (profile the scheduler; prints its top self-time functions and keeps the .cpuprofile),
 *        --agent-cpu-prof (profile every agent process; prints the first one's top self-time functions),
 *        --agent-node-options "…" (node flags for the agent processes, e.g. "--max-semi-space-size=1"),
 *        --timeout-s N (how long to wait for the last job, default 300),
 *        --no-nats-counts (leave out the count of the scheduler's NATS messages by subject class, e2e-nats-tap.ts,
 *        from the first submit until the last job was settled, printed per job).
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import * as pb from "@capa/api";
import { BUCKETS, connectBus, decode } from "@capa/bus";
import { isFinalJobState } from "@capa/domain";
import { freePort, startNatsServer } from "@capa/testkit";
import { credentials, status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { benchAdmin, rpc, spawnChild, stopChild } from "./e2e-children.js";
import { SOCKET_WRITES } from "./e2e-nats-tap.js";
import { cpuTimes, loadLine, memory, percentile, sumCpu, topCosts } from "./e2e-stats.js";

interface Scenario {
  name: string;
  agents: number;
  agentsPerProcess: number;
  tenants: number;
  jobs: number;
  clients: number;
}

export interface E2eResult {
  scenario: string;
  agents: number;
  agentProcesses: number;
  tenants: number;
  clients: number;
  jobs: number;
  acked: number;
  succeeded: number;
  jobsPerSec: number;
  acksPerSec: number;
  ackP50Ms: number;
  ackP99Ms: number;
  finalP50Ms: number;
  finalP99Ms: number;
  settled: number;
  settledPerSec: number;
  /** Seconds from the last final job to the last settled one (settlement catching up). */
  settleLagS: number;
  /** Scheduler CPU from the first submit until the last job was final. */
  schedulerCpuMsPerJobToFinal: number;
  /** Scheduler CPU from the first submit until the last job was settled (or the wait timed out). */
  schedulerCpuMsPerJob: number;
  /** The kernel's share of schedulerCpuMsPerJob (stime): mostly socket I/O. */
  schedulerSysMsPerJob: number;
  agentsCpuMsPerJob: number;
  taskProcsCpuMsPerJob: number;
  natsCpuMsPerJob: number;
  schedulerPeakRssMb: number;
  agentPeakRssMb: number;
  aborted: number;
  otherErrors: Record<string, number>;
  lostTasks: number;
  neverFinal: number;
  wallS: number;
  /** Messages the scheduler sent to NATS per job, by subject class (e2e-nats-tap.ts); empty with --no-nats-counts. */
  natsPerJob: Record<string, number>;
  natsTotalPerJob: number;
  /** Writes to the scheduler's NATS sockets per job (each carries one or more of those messages). */
  socketWritesPerJob: number;
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function runScenario(
  s: Scenario,
  opts: { cpuProf?: string; agentCpuProf?: string; agentNodeOptions: string[]; timeoutMs: number; countNats: boolean },
): Promise<E2eResult> {
  const root = mkdtempSync(join(tmpdir(), "capa-bench-e2e-"));
  const nats = await startNatsServer({ storeDir: join(root, "nats") });
  const children: ChildProcess[] = [];
  try {
    const grpcAddress = `127.0.0.1:${await freePort()}`;
    // The clients act as the bootstrap admin, naming each job's tenant (operators and admins may).
    const { bootstrapToken, metadata } = benchAdmin();
    const sched = await spawnChild(
      "scheduler",
      { natsUrl: nats.url, grpcAddress, dataDir: join(root, "scheduler"), bootstrapToken, countNats: opts.countNats },
      opts.cpuProf ? ["--cpu-prof", "--cpu-prof-dir", opts.cpuProf] : [],
    );
    children.push(sched.child);
    const groups: string[][] = [];
    for (let i = 0; i < s.agents; i++) {
      if (i % s.agentsPerProcess === 0) groups.push([]);
      groups.at(-1)!.push(`bench-${String(i).padStart(3, "0")}`);
    }
    // Started a few at a time: 16 node processes booting at once on 2 cores only slows every one of them.
    const agentProcs: ChildProcess[] = [];
    for (let i = 0; i < groups.length; i += 4) {
      const started = await Promise.all(
        groups.slice(i, i + 4).map((ids) =>
          spawnChild(
            "agents",
            {
              natsUrl: nats.url,
              ids,
              gpus: "8xH100-80GB",
              region: "eu-west",
              workRoot: join(root, "agents"),
            },
            [
              ...opts.agentNodeOptions,
              ...(opts.agentCpuProf ? ["--cpu-prof", "--cpu-prof-dir", opts.agentCpuProf] : []),
            ],
          ),
        ),
      );
      for (const a of started) {
        agentProcs.push(a.child);
        children.push(a.child);
      }
    }
    const channel = { "grpc.use_local_subchannel_pool": 1 };
    const operator = new pb.OperatorServiceClient(grpcAddress, credentials.createInsecure(), channel);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const res = await rpc<pb.ListAgentsResponse>((cb) =>
        operator.listAgents({ region: "", limit: 0, pageToken: "" }, metadata, cb),
      ).catch(() => undefined);
      if ((res?.agents.length ?? 0) >= s.agents) break;
      if (Date.now() > deadline) throw new Error(`only ${res?.agents.length ?? 0} of ${s.agents} agents listed`);
      await new Promise((r) => setTimeout(r, 250));
    }
    operator.close();

    // Completion is read from the durable record (KV watch of capa_jobs), not from the scheduler's API.
    const nc = await connectBus({ servers: nats.url, name: "bench-e2e" });
    const kv = await new Kvm(jetstream(nc)).open(BUCKETS.jobs);
    const finalAt = new Map<string, { atMs: number; state: string }>();
    const lostTasks = new Set<string>();
    let allFinal: () => void = () => {};
    const acked = new Map<string, number>();
    let submitting = true;
    // Settlement (ledger, reservation, job.spent) ends with the job's `settled.<jobId>` marker in capa_budgets.
    const settledAt = new Map<string, number>();
    let allSettled: () => void = () => {};
    const budgets = await new Kvm(jetstream(nc)).open("capa_budgets");
    const settledWatch = await budgets.watch({ key: "settled.>", include: "updates" });
    void (async () => {
      for await (const e of settledWatch) {
        if (e.operation !== "PUT") continue;
        const id = e.key.slice("settled.".length);
        if (!settledAt.has(id)) settledAt.set(id, performance.now());
        if (!submitting && [...acked.keys()].every((j) => settledAt.has(j))) allSettled();
      }
    })();
    const watch = await kv.watch({ key: "*", include: "updates" });
    void (async () => {
      for await (const e of watch) {
        if (e.operation !== "PUT") continue;
        const job = decode.job(e.value);
        for (const t of job.tasks) if (t.state === "lost") lostTasks.add(`${t.id}:${t.epoch}`);
        if (isFinalJobState(job.state) && !finalAt.has(job.id)) {
          finalAt.set(job.id, { atMs: performance.now(), state: job.state });
          if (!submitting && [...acked.keys()].every((id) => finalAt.has(id))) allFinal();
        }
      }
    })();

    const schedPid = sched.child.pid!;
    const agentPids = agentProcs.map((c) => c.pid!);
    const natsPid = nats.process.pid!;
    const natsCounts = async () => (opts.countNats ? ((await sched.ask("nats")) as Record<string, number>) : {});
    const natsBefore = await natsCounts();
    const before = { sched: cpuTimes(schedPid), agents: sumCpu(agentPids), nats: cpuTimes(natsPid) };

    const clients = Array.from(
      { length: s.clients },
      () => new pb.JobServiceClient(grpcAddress, credentials.createInsecure(), channel),
    );
    const spec = pb.JobSpec.fromPartial({
      kind: pb.JobKind.JOB_KIND_BATCH,
      replicas: 1,
      gpusPerReplica: 1,
      template: { command: ["true"], env: {}, workingDir: "", killGraceSeconds: 2 },
    });
    const ackMs: number[] = [];
    const submittedAt = new Map<string, number>();
    const errors: Record<string, number> = {};
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (client) => {
        while (next < s.jobs) {
          const i = next++;
          const tenant = `bench-${i % s.tenants}`;
          const start = performance.now();
          try {
            const res = await rpc<pb.SubmitJobResponse>((cb) =>
              client.submitJob({ requestId: `bench-${i}`, tenant, spec }, metadata, cb),
            );
            const end = performance.now();
            ackMs.push(end - start);
            submittedAt.set(res.job!.id, start);
            acked.set(res.job!.id, end);
          } catch (err) {
            const code = grpcStatus[(err as ServiceError).code] ?? String(err);
            errors[code] = (errors[code] ?? 0) + 1;
          }
        }
      }),
    );
    const tAcked = performance.now();
    submitting = false;
    const done = new Promise<void>((r) => {
      allFinal = r;
    });
    const settled = new Promise<void>((r) => {
      allSettled = r;
    });
    const waitLimit = new Promise((r) => setTimeout(r, opts.timeoutMs).unref());
    if (![...acked.keys()].every((id) => finalAt.has(id))) await Promise.race([done, waitLimit]);
    const tFinal = performance.now();
    const atFinal = { sched: cpuTimes(schedPid), agents: sumCpu(agentPids), nats: cpuTimes(natsPid) };
    // CPU per job counts until every job is settled too: settlement is part of what a job costs.
    if (![...acked.keys()].every((id) => settledAt.has(id))) await Promise.race([settled, waitLimit]);
    const after = { sched: cpuTimes(schedPid), agents: sumCpu(agentPids), nats: cpuTimes(natsPid) };
    const natsAfter = await natsCounts();
    const schedMem = memory(schedPid);
    const agentMem = agentPids.map((p) => memory(p).peakMb);
    watch.stop();
    settledWatch.stop();
    await nc.close();
    for (const c of clients) c.close();

    const finals = [...acked.keys()].map((id) => finalAt.get(id)).filter((f) => f !== undefined);
    const succeeded = finals.filter((f) => f.state === "succeeded");
    const lastSucceeded = Math.max(t0, ...succeeded.map((f) => f.atMs));
    const settledIds = [...acked.keys()].filter((id) => settledAt.has(id));
    const lastSettled = Math.max(t0, ...settledIds.map((id) => settledAt.get(id)!));
    const toFinal = [...acked.keys()]
      .filter((id) => finalAt.has(id))
      .map((id) => finalAt.get(id)!.atMs - submittedAt.get(id)!)
      .sort((a, b) => a - b);
    ackMs.sort((a, b) => a - b);
    const n = Math.max(1, acked.size);
    const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
    const { ABORTED: aborted = 0, ...otherErrors } = errors;
    const socketWrites = (natsAfter[SOCKET_WRITES] ?? 0) - (natsBefore[SOCKET_WRITES] ?? 0);
    const natsPerJob = Object.fromEntries(
      Object.entries(natsAfter)
        .filter(([k]) => k !== SOCKET_WRITES)
        .map(([k, v]) => [k, round((v - (natsBefore[k] ?? 0)) / n, 2)] as const)
        .filter(([, v]) => v > 0)
        .sort((a, b) => b[1] - a[1]),
    );
    return {
      scenario: s.name,
      agents: s.agents,
      agentProcesses: agentProcs.length,
      tenants: s.tenants,
      clients: s.clients,
      jobs: s.jobs,
      acked: acked.size,
      succeeded: succeeded.length,
      jobsPerSec: round(succeeded.length / ((lastSucceeded - t0) / 1000)),
      acksPerSec: round(acked.size / ((tAcked - t0) / 1000)),
      ackP50Ms: round(percentile(ackMs, 50)),
      ackP99Ms: round(percentile(ackMs, 99)),
      finalP50Ms: round(percentile(toFinal, 50)),
      finalP99Ms: round(percentile(toFinal, 99)),
      settled: settledIds.length,
      settledPerSec: round(settledIds.length / ((lastSettled - t0) / 1000)),
      settleLagS: round((lastSettled - tFinal) / 1000),
      schedulerCpuMsPerJobToFinal: round((atFinal.sched.ownMs - before.sched.ownMs) / n, 2),
      schedulerCpuMsPerJob: round((after.sched.ownMs - before.sched.ownMs) / n, 2),
      schedulerSysMsPerJob: round((after.sched.sysMs - before.sched.sysMs) / n, 2),
      agentsCpuMsPerJob: round((after.agents.ownMs - before.agents.ownMs) / n, 2),
      taskProcsCpuMsPerJob: round((after.agents.childrenMs - before.agents.childrenMs) / n, 2),
      natsCpuMsPerJob: round((after.nats.ownMs - before.nats.ownMs) / n, 2),
      schedulerPeakRssMb: round(schedMem.peakMb, 0),
      agentPeakRssMb: round(Math.max(0, ...agentMem), 0),
      aborted,
      otherErrors,
      lostTasks: lostTasks.size,
      neverFinal: acked.size - finals.length,
      wallS: round((performance.now() - t0) / 1000),
      natsPerJob,
      natsTotalPerJob: round(
        Object.values(natsPerJob).reduce((a, b) => a + b, 0),
        2,
      ),
      socketWritesPerJob: round(socketWrites / n, 2),
    };
  } finally {
    await Promise.allSettled(children.map((c) => stopChild(c)));
    await nats.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

function table(header: string[], rows: string[][]): string {
  const cells = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  return cells
    .map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join("  "))
    .join("\n");
}

function printResults(results: E2eResult[]): void {
  const rows: [string, (r: E2eResult) => string][] = [
    ["jobs/s, first submit → last SUCCEEDED", (r) => `${r.jobsPerSec}`],
    ["SubmitJob acks/s", (r) => `${r.acksPerSec}`],
    ["ack latency p50 / p99 ms", (r) => `${r.ackP50Ms} / ${r.ackP99Ms}`],
    ["submit → final p50 / p99 ms", (r) => `${r.finalP50Ms} / ${r.finalP99Ms}`],
    ["jobs settled/s (first submit → last settled)", (r) => `${r.settledPerSec}`],
    ["settlement lag after the last final s", (r) => `${r.settleLagS}`],
    ["scheduler CPU per job ms (to settled)", (r) => `${r.schedulerCpuMsPerJob}`],
    ["scheduler CPU per job ms (to final)", (r) => `${r.schedulerCpuMsPerJobToFinal}`],
    ["  of which kernel (stime) ms", (r) => `${r.schedulerSysMsPerJob}`],
    ["agents' CPU per job ms", (r) => `${r.agentsCpuMsPerJob}`],
    ["task supervisors+tasks CPU per job ms", (r) => `${r.taskProcsCpuMsPerJob}`],
    ["nats-server CPU per job ms", (r) => `${r.natsCpuMsPerJob}`],
    ["scheduler / agent peak RSS MB", (r) => `${r.schedulerPeakRssMb} / ${r.agentPeakRssMb}`],
    ["SubmitJob ABORTED", (r) => `${r.aborted}`],
    [
      "other submit errors",
      (r) =>
        Object.entries(r.otherErrors)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ") || "0",
    ],
    ["lost tasks / jobs never final", (r) => `${r.lostTasks} / ${r.neverFinal}`],
    ["settled / succeeded / acked / submitted", (r) => `${r.settled} / ${r.succeeded} / ${r.acked} / ${r.jobs}`],
    ["wall s", (r) => `${r.wallS}`],
  ];
  const header = [
    "figure",
    ...results.map(
      (r) =>
        `${r.scenario} (${r.agents} agents/${r.agentProcesses} procs, ${r.tenants} tenant${r.tenants > 1 ? "s" : ""})`,
    ),
  ];
  console.log(
    table(
      header,
      rows.map(([label, f]) => [label, ...results.map(f)]),
    ),
  );
  const classes = [...new Set(results.flatMap((r) => Object.keys(r.natsPerJob)))];
  if (classes.length === 0) return;
  console.log("\nscheduler → NATS messages per job, by subject class (first submit → last settled)");
  console.log(
    table(
      ["class", ...results.map((r) => r.scenario)],
      [
        ["total", ...results.map((r) => `${r.natsTotalPerJob}`)],
        ["(socket writes carrying them)", ...results.map((r) => `${r.socketWritesPerJob}`)],
        ...classes.map((c) => [c, ...results.map((r) => `${r.natsPerJob[c] ?? 0}`)]),
      ],
    ),
  );
}

async function main(): Promise<void> {
  const json = process.argv.includes("--json");
  const jobs = Number(flag("--jobs") ?? 2000);
  const clients = Number(flag("--clients") ?? 8);
  const timeoutMs = Number(flag("--timeout-s") ?? 300) * 1000;
  const countNats = !process.argv.includes("--no-nats-counts");
  const agentNodeOptions = flag("--agent-node-options")?.split(" ").filter(Boolean) ?? [];
  const all: Scenario[] = [
    { name: "base", agents: 16, agentsPerProcess: 1, tenants: 1, jobs, clients },
    { name: "agents64", agents: 64, agentsPerProcess: 8, tenants: 1, jobs, clients },
    { name: "tenants10", agents: 16, agentsPerProcess: 1, tenants: 10, jobs, clients },
  ];
  const chosen = (flag("--scenario") ?? "base,agents64,tenants10").split(",");
  const scenarios = all.filter((s) => chosen.includes(s.name));
  if (scenarios.length === 0) throw new Error(`--scenario: choose from ${all.map((s) => s.name).join(", ")}`);
  const profDir = process.argv.includes("--cpu-prof") ? mkdtempSync(join(tmpdir(), "capa-bench-prof-")) : undefined;
  const agentProfDir = process.argv.includes("--agent-cpu-prof")
    ? mkdtempSync(join(tmpdir(), "capa-bench-agent-prof-"))
    : undefined;

  console.log(
    `capa end-to-end benchmark — node ${process.version}, ${cpus()[0]?.model ?? "cpu"} ×${availableParallelism()}; ${loadLine()} at start`,
  );
  console.log(
    "real nats-server, one scheduler process, real agents (startAgent, simulated 8×H100) in child processes, 1-GPU `true` jobs",
  );
  const results: E2eResult[] = [];
  for (const s of scenarios) {
    process.stderr.write(
      `running ${s.name}: ${s.agents} agents, ${s.tenants} tenant(s), ${s.jobs} jobs, ${s.clients} clients\n`,
    );
    results.push(
      await runScenario(s, {
        agentNodeOptions,
        timeoutMs,
        countNats,
        ...(profDir && results.length === 0 ? { cpuProf: profDir } : {}),
        ...(agentProfDir && results.length === 0 ? { agentCpuProf: agentProfDir } : {}),
      }),
    );
  }
  console.log("");
  printResults(results);
  console.log(`\n${loadLine()} at end`);
  let profile: { sharePct: number; fn: string; where: string }[] | undefined;
  if (profDir) {
    const files = readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile"));
    if (files.length > 0) {
      const file = join(profDir, files[0]!);
      profile = topCosts(readFileSync(file, "utf8"), 25);
      console.log(`\nscheduler profile (${file}; first scenario), top self time:`);
      for (const p of profile) console.log(`${String(p.sharePct).padStart(5)}%  ${p.fn}  ${p.where}`);
    }
  }
  if (agentProfDir) {
    const files = readdirSync(agentProfDir).filter((f) => f.endsWith(".cpuprofile"));
    if (files.length > 0) {
      const file = join(agentProfDir, files[0]!);
      console.log(`\nagent profile (${file}, 1 of ${files.length}; first scenario), top self time:`);
      for (const p of topCosts(readFileSync(file, "utf8"), 40))
        console.log(`${String(p.sharePct).padStart(5)}%  ${p.fn}  ${p.where}`);
    }
  }
  if (json) console.log(JSON.stringify({ runs: results, ...(profile ? { profile } : {}) }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
