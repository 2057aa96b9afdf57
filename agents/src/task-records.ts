/**
 * What the agent must remember across its own restarts, one small JSON file per task under `<workDir>/state`:
 * - a task's final status, so a restarted agent re-publishes it instead of running the task a second time while the
 *   desired state still lists it;
 * - the process group of a task that was running, so a restarted agent can kill what its previous life left behind
 *   and report the task "lost" for the scheduler to re-place. The agent's supervisor kills its tasks when the agent
 *   dies, so normally nothing is left; but a supervisor can be killed with the agent (or the task may predate
 *   supervisors).
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TaskStatusReport } from "@capa/domain";
import { ownSupervisorPids } from "./executor.js";

export interface TaskRecord {
  taskId: string;
  jobId: string;
  epoch: number;
  bootId: string;
  gpuIndices: number[];
  pid?: number;
  /** Kernel start time of `pid` (/proc/<pid>/stat field 22): tells our process from a later one reusing the pid. */
  pidStartTicks?: string;
  /** The supervisor that started the task (supervisor.ts; shared by the agent's tasks) and its kernel start time. */
  supervisorPid?: number;
  supervisorStartTicks?: string;
  startedAtMs?: number;
  final?: TaskStatusReport;
}

export class TaskRecords {
  readonly dir: string;

  constructor(workDir: string) {
    this.dir = join(workDir, "state");
    mkdirSync(this.dir, { recursive: true });
  }

  /** Atomic replace (write + rename): a crash never leaves half a record. */
  save(record: TaskRecord): void {
    const path = join(this.dir, `${record.taskId}.json`);
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, JSON.stringify(record));
    renameSync(tmp, path);
  }

  remove(taskId: string): void {
    rmSync(join(this.dir, `${taskId}.json`), { force: true });
  }

  /** Every readable record; unreadable files are returned by name so the caller can log them. */
  loadAll(): { records: TaskRecord[]; unreadable: string[] } {
    const records: TaskRecord[] = [];
    const unreadable: string[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(".json")) continue;
      try {
        const record = JSON.parse(readFileSync(join(this.dir, name), "utf8")) as TaskRecord;
        if (typeof record.taskId !== "string" || typeof record.epoch !== "number") throw new Error("not a record");
        records.push(record);
      } catch {
        unreadable.push(name);
      }
    }
    return { records, unreadable };
  }
}

/** Field 22 of /proc/<pid>/stat; undefined where there is no /proc (macOS) or no such process. */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses: count fields after its closing ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19];
  } catch {
    return undefined;
  }
}

/**
 * Kills the process group a previous agent life started, if that exact process is still alive. Without a start
 * time to compare (no /proc) it does nothing rather than risk killing an unrelated group that reused the pid.
 */
export function killOrphanGroup(record: TaskRecord): boolean {
  // A previous life's supervisor still alive would outlive its tasks only briefly, but it has nothing left to do
  // either. One this process runs now is not a previous life's: it serves this life's tasks too (an agent restarted
  // within the same process, as tests do), which must not die for an old record.
  if (record.supervisorPid === undefined || !ownSupervisorPids().has(record.supervisorPid))
    killIfSame(record.supervisorPid, record.supervisorStartTicks, false);
  return killIfSame(record.pid, record.pidStartTicks, true);
}

function killIfSame(pid: number | undefined, startTicks: string | undefined, group: boolean): boolean {
  if (pid === undefined || startTicks === undefined) return false;
  if (processStartTicks(pid) !== startTicks) return false;
  try {
    process.kill(group ? -pid : pid, "SIGKILL");
    return true;
  } catch {
    return false;
  }
}
