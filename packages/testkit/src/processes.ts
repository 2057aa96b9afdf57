/**
 * Linux process inspection for tests that check what happened to real child processes (tasks, supervisors,
 * agents): read from /proc, never from timing.
 */
import { readdirSync, readFileSync } from "node:fs";

/** /proc/<pid>/stat fields after the command name: [state, ppid, pgrp, ...] (field n of proc(5) is index n − 3). */
export function procStat(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** Alive and not a zombie (an orphan reparented to a PID 1 that does not reap stays a zombie). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return procStat(pid)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Kernel start time of a process (/proc/<pid>/stat field 22), as the agent records it against pid reuse. */
export function startTicks(pid: number): string {
  return procStat(pid)[19]!;
}

/** Live (non-zombie) processes of a process group. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const [state, , pgrp] = procStat(name);
      if (Number(pgrp) === pgid && state !== "Z") members.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return members;
}

/**
 * Alive with no SIGKILL pending: nothing has sent it one. A SIGKILL is marked pending on the target when it is sent
 * and stays so until the target is gone, so this holds right after a kill() returned, with no waiting.
 */
export function neverKilled(pid: number): boolean {
  if (!isAlive(pid)) return false;
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const pending = [...status.matchAll(/^(?:ShdPnd|SigPnd):\s*([0-9a-f]+)$/gm)].map((m) => BigInt(`0x${m[1]}`));
  return pending.length === 2 && pending.every((mask) => (mask & (1n << 8n)) === 0n);
}
