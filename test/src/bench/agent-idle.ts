/**
 * `npm run bench:agent-idle` — the idle footprint of one real `capa agent` process (the CLI, as a provider runs
 * it, on `--simulate-gpus 4xH100-80GB`, default heartbeat and advert periods) beside a real nats-server and no
 * scheduler (the benchmark writes the agent's assignment key itself, as the scheduler's plan applier does):
 *   1. idle before any task (no task supervisor yet): CPU % of one core over the window, RSS, its peak, and the
 *      private (anonymous) part of the RSS, which is what the process costs the machine beyond the Node binary's
 *      file-backed pages that every Node process on the host shares;
 *   2. one `true` task, then idle again while the task supervisor waits out its idle period (it retires 60 s after
 *      its last task, so this window stops short of that): the same figures for the agent and for the supervisor.
 * Figures, not a test. Flags: --window-s N (60; the second window is at most 55 s), --json,
 * --node-options "…" (node flags for the agent process, e.g. "--max-semi-space-size=1").
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { JOURNAL_FILE, readJournal } from "@capa/agent";
import { connectBus, decode, encode, ensureStore, TypedKv } from "@capa/bus";
import type { AgentAssignments } from "@capa/domain";
import { startNatsServer } from "@capa/testkit";
import { stopChild } from "./e2e-children.js";
import { cpuTimes, loadLine, memory } from "./e2e-stats.js";

const CAPA_BIN = join(dirname(fileURLToPath(import.meta.url)), "../../../packages/cli/bin/capa.js");
const AGENT_ID = "idle-agent";
const SETTLE_MS = 10_000;
/** The supervisor retires 60 s after its last task (executor.ts): the window with it stays below that. */
const SUPERVISOR_WINDOW_MAX_MS = 55_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** The private (anonymous) resident memory, MB: RssAnon of /proc/<pid>/status. */
function privateMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/^RssAnon:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

interface Footprint {
  cpuPct: number;
  rssMb: number;
  peakRssMb: number;
  privateMb: number;
}

/** CPU over the window; RSS sampled each second (the median, since a late GC moves the last reading a lot). */
async function measure(pids: number[], windowMs: number): Promise<Footprint[]> {
  const before = pids.map((p) => cpuTimes(p).ownMs);
  const t0 = performance.now();
  const rss: number[][] = pids.map(() => []);
  const priv: number[][] = pids.map(() => []);
  while (performance.now() - t0 < windowMs) {
    await sleep(Math.min(1_000, windowMs - (performance.now() - t0)));
    pids.forEach((pid, i) => {
      rss[i]!.push(memory(pid).rssMb);
      priv[i]!.push(privateMb(pid));
    });
  }
  const elapsed = performance.now() - t0;
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? 0;
  return pids.map((pid, i) => ({
    cpuPct: round(((cpuTimes(pid).ownMs - before[i]!) / elapsed) * 100, 2),
    rssMb: round(median(rss[i]!)),
    peakRssMb: round(memory(pid).peakMb),
    privateMb: round(median(priv[i]!)),
  }));
}

async function main(): Promise<void> {
  const json = process.argv.includes("--json");
  const windowMs = Number(flag("--window-s") ?? 60) * 1000;
  const root = mkdtempSync(join(tmpdir(), "capa-bench-agent-idle-"));
  const nats = await startNatsServer({ storeDir: join(root, "nats") });
  const nc = await connectBus({ servers: nats.url, name: "bench-agent-idle" });
  const workDir = join(root, "agent");
  const nodeOptions = flag("--node-options")?.split(" ").filter(Boolean) ?? [];
  const agent = spawn(
    process.execPath,
    [
      ...nodeOptions,
      CAPA_BIN,
      "agent",
      ...["--nats-url", nats.url, "--id", AGENT_ID, "--region", "eu-west", "--work-dir", workDir],
      ...["--simulate-gpus", "4xH100-80GB", "--price", "H100-80GB=2.00", "--log-level", "warn"],
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  try {
    console.log(
      `capa agent idle footprint${nodeOptions.length ? ` (node ${nodeOptions.join(" ")})` : ""} — node ${process.version}, ${cpus()[0]?.model ?? "cpu"} ×${availableParallelism()}; ${loadLine()} at start`,
    );
    const store = await ensureStore(nc);
    await sleep(SETTLE_MS); // past start-up (module loading, first advert, assignment watch)
    process.stderr.write(`idle, no supervisor: ${windowMs / 1000} s\n`);
    const [bare] = await measure([agent.pid!], windowMs);
    process.stderr.write(`${JSON.stringify(bare)}\n`);

    const allocs = new TypedKv<AgentAssignments>(store.allocs, {
      encode: encode.assignments,
      decode: decode.assignments,
    });
    const task = {
      taskId: "idle-t1",
      jobId: "job-idle-t1",
      replica: 0,
      gpuIndices: [0],
      template: { command: ["true"], env: {}, workingDir: "", killGraceSeconds: 2 },
      epoch: 1,
      pricePerGpuHour: 2_000_000,
      tenant: "bench",
      assignedAtMs: Date.now(),
      stop: false,
      stopReason: "",
    };
    await allocs.mutate(AGENT_ID, () => ({ agentId: AGENT_ID, tasks: [task], updatedAtMs: Date.now() }));
    // The task's final record: in the journal, or (an agent from before the journal) in its own file.
    const finished = () => {
      if (readJournal(join(workDir, "state", JOURNAL_FILE)).records.get(task.taskId)?.final) return true;
      try {
        return "final" in JSON.parse(readFileSync(join(workDir, "state", `${task.taskId}.json`), "utf8"));
      } catch {
        return false;
      }
    };
    for (let i = 0; !finished(); i++) {
      if (i > 600) throw new Error("the task did not finish within 60 s");
      await sleep(100);
    }
    // The agent's child running the supervisor script (the record's final save keeps only the final report).
    const supervisorPid = readFileSync(`/proc/${agent.pid}/task/${agent.pid}/children`, "utf8")
      .split(" ")
      .filter(Boolean)
      .map(Number)
      .find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("capa-task-supervisor-"));
    if (supervisorPid === undefined) throw new Error("no task supervisor under the agent");
    await sleep(2_000);
    const window2 = Math.min(windowMs, SUPERVISOR_WINDOW_MAX_MS);
    process.stderr.write(`idle, supervisor waiting out its idle period: ${window2 / 1000} s\n`);
    const [withSup, sup] = await measure([agent.pid!, supervisorPid], window2);

    const rows: [string, (f: Footprint) => string][] = [
      ["CPU % of one core", (f) => `${f.cpuPct}`],
      ["RSS MB, median of 1 s samples (peak)", (f) => `${f.rssMb} (${f.peakRssMb})`],
      ["private (RssAnon) MB, median", (f) => `${f.privateMb}`],
    ];
    const cols = [
      `agent, no supervisor (${windowMs / 1000} s)`,
      `agent, supervisor up (${window2 / 1000} s)`,
      "its supervisor",
    ];
    const cells = [["figure", ...cols], ...rows.map(([l, f]) => [l, f(bare!), f(withSup!), f(sup!)])];
    const widths = cells[0]!.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
    console.log("");
    for (const r of cells)
      console.log(r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join("  "));
    console.log(`\n${loadLine()} at end`);
    if (json) console.log(JSON.stringify({ noSupervisor: bare, withSupervisor: withSup, supervisor: sup }));
  } finally {
    await stopChild(agent);
    await nc.close();
    await nats.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
