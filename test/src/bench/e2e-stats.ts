/** /proc readings for `npm run bench:e2e`: CPU time and memory of the processes under test, by pid. */
import { readdirSync, readFileSync } from "node:fs";
import { procStat } from "@capa/testkit";

/** USER_HZ: Linux reports process times in 1/100 s on every architecture Node runs on. */
const TICKS_PER_SECOND = 100;

export interface CpuTimes {
  /** utime + stime of the process itself, ms. */
  ownMs: number;
  /** stime alone: the kernel's share (socket reads and writes to NATS and gRPC peers, above all), ms. */
  sysMs: number;
  /** cutime + cstime: children it has waited for, ms (in sumCpu, live descendants too: task supervisor and tasks). */
  childrenMs: number;
}

export function cpuTimes(pid: number): CpuTimes {
  try {
    const f = procStat(pid);
    // proc(5) fields 14..17 (utime, stime, cutime, cstime) are indices 11..14 here.
    const t = (i: number) => (Number(f[i]) * 1000) / TICKS_PER_SECOND;
    return { ownMs: t(11) + t(12), sysMs: t(12), childrenMs: t(13) + t(14) };
  } catch {
    return { ownMs: 0, sysMs: 0, childrenMs: 0 };
  }
}

export function sumCpu(pids: number[]): CpuTimes {
  const out = { ownMs: 0, sysMs: 0, childrenMs: 0 };
  const children = childrenByParent();
  for (const pid of pids) {
    const c = cpuTimes(pid);
    out.ownMs += c.ownMs;
    out.sysMs += c.sysMs;
    out.childrenMs += c.childrenMs + descendantsMs(pid, children);
  }
  return out;
}

/**
 * CPU of the live processes under `pid`, their reaped children included. A long-lived child (an agent's task
 * supervisor, which outlives every task it starts) reaches its parent's cutime only once reaped, so without this
 * its own CPU and that of every task it reaped would be missing from the figure.
 */
function descendantsMs(pid: number, children: Map<number, number[]>): number {
  let ms = 0;
  for (const child of children.get(pid) ?? []) {
    const c = cpuTimes(child);
    ms += c.ownMs + c.childrenMs + descendantsMs(child, children);
  }
  return ms;
}

/** Live processes by parent pid. */
function childrenByParent(): Map<number, number[]> {
  const byParent = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = Number(procStat(name)[1]);
      byParent.set(ppid, [...(byParent.get(ppid) ?? []), Number(name)]);
    } catch {
      // exited while we looked
    }
  }
  return byParent;
}

/** Resident set now and its peak (VmRSS, VmHWM), MB. */
export function memory(pid: number): { rssMb: number; peakMb: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
    return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 };
  } catch {
    return { rssMb: 0, peakMb: 0 };
  }
}

/** The 1-minute load average and what it means on this machine, for the header of a run. */
export function loadLine(): string {
  const [one, five] = readFileSync("/proc/loadavg", "utf8").split(" ");
  return `load average ${one} (1 min), ${five} (5 min)`;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/**
 * Top self-time entries of a V8 .cpuprofile (node --cpu-prof), as "share  function  file:line"; shares are of the
 * busy time (the "(idle)" samples left out), so they add up to what the process spent on the CPU.
 */
export function topCosts(profileJson: string, count = 20): { sharePct: number; fn: string; where: string }[] {
  const profile = JSON.parse(profileJson) as { nodes: ProfileNode[] };
  const byKey = new Map<string, { hits: number; fn: string; where: string }>();
  let total = 0;
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0 || n.callFrame.functionName === "(idle)") continue;
    total += hits;
    const fn = n.callFrame.functionName || "(anonymous)";
    const url = n.callFrame.url.replace(/^file:\/\//, "").replace(/.*\/node_modules\//, "~/");
    const short = url.replace(/.*\/(packages|scheduler|agents|test)\//, "$1/");
    const where = short ? `${short}:${n.callFrame.lineNumber + 1}` : "";
    const key = `${fn}@${where}`;
    const e = byKey.get(key) ?? { hits: 0, fn, where };
    e.hits += hits;
    byKey.set(key, e);
  }
  return [...byKey.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, count)
    .map((e) => ({ sharePct: Math.round((e.hits / Math.max(1, total)) * 1000) / 10, fn: e.fn, where: e.where }));
}
