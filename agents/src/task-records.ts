/**
 * What the agent must remember across its own restarts, one small JSON file per task under `<workDir>/state`:
 * - a task's final status, so a restarted agent re-publishes it instead of running the task a second time while the
 *   desired state still lists it;
 * - the process group of a task that was running, so a restarted agent can kill what its previous life left behind
 *   and report the task "lost" for the scheduler to re-place. The agent's supervisor kills its tasks when the agent
 *   dies, so normally nothing is left; but a supervisor can be killed with the agent (or the task may predate
 *   supervisors).
 */
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { TaskStatusReport } from "@capa/domain";
import { ownSupervisorPids } from "./executor.js";
import { processStartTicks } from "./proc-start.js";

export { processStartTicks };

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

/** The journal in `<workDir>/state`: one JSON line per save (the whole record) or removal; the last line wins. */
export const JOURNAL_FILE = "records.jsonl";
/** A journal longer than this many lines beyond twice the live records is rewritten with only the live ones. */
const COMPACT_SLACK_LINES = 512;

interface Removal {
  taskId: string;
  removed: true;
}

const isRecord = (v: unknown): v is TaskRecord =>
  typeof (v as TaskRecord)?.taskId === "string" && typeof (v as TaskRecord).epoch === "number";

/**
 * The records a journal holds (last line per task wins, a removal drops it), with its line count and the lines that
 * do not parse (a write torn by a crash can only be the last line of that life). Reads only: safe while an agent
 * appends.
 */
export function readJournal(path: string): { records: Map<string, TaskRecord>; lines: number; unreadable: number[] } {
  const records = new Map<string, TaskRecord>();
  const unreadable: number[] = [];
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return { records, lines: 0, unreadable };
  }
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((line, i) => {
    try {
      const entry = JSON.parse(line) as TaskRecord | Removal;
      if ((entry as Removal).removed === true && typeof entry.taskId === "string") records.delete(entry.taskId);
      else if (isRecord(entry)) records.set(entry.taskId, entry);
      else throw new Error("not a record");
    } catch {
      unreadable.push(i + 1);
    }
  });
  return { records, lines: lines.length, unreadable };
}

/**
 * Each save and each removal is one append of one line to an open file: one write(2) on the task's hot path, where a
 * file per task cost an open, write, close and rename per save and an lstat and unlink per removal (about a fifth
 * of an agent's CPU per trivial task). Same crash guarantee as the atomic replace it took over from: a process
 * crash leaves every completed write in place and at most the last line torn, which the next life skips (that save
 * had not returned, so nothing after it happened). Neither syncs to disk: they guard against the agent dying, not
 * the machine. The journal is rewritten (write + rename, atomic) with only the live records once it has grown well
 * past them, so it stays proportional to the tasks the agent remembers.
 */
export class TaskRecords {
  readonly dir: string;
  private readonly path: string;
  private readonly live: Map<string, TaskRecord>;
  private readonly torn: number[];
  private lines: number;
  private fd: number | undefined;

  constructor(workDir: string) {
    this.dir = join(workDir, "state");
    mkdirSync(this.dir, { recursive: true });
    this.path = join(this.dir, JOURNAL_FILE);
    const { records, lines, unreadable } = readJournal(this.path);
    this.live = records;
    this.lines = lines;
    this.torn = unreadable;
  }

  save(record: TaskRecord): void {
    this.append(JSON.stringify(record));
    this.live.set(record.taskId, record);
  }

  remove(taskId: string): void {
    if (!this.live.has(taskId)) return;
    this.append(JSON.stringify({ taskId, removed: true } satisfies Removal));
    this.live.delete(taskId);
  }

  /** Closes the journal; a later save reopens it. */
  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }

  /**
   * Every readable record; unreadable entries are returned by name (a file, or a journal line) so the caller can
   * log them. Records an older agent kept as one `<taskId>.json` file each are moved into the journal first.
   */
  loadAll(): { records: TaskRecord[]; unreadable: string[] } {
    const unreadable = this.torn.map((line) => `${JOURNAL_FILE} line ${line}`);
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(".json")) continue;
      const file = join(this.dir, name);
      try {
        const record = JSON.parse(readFileSync(file, "utf8")) as unknown;
        if (!isRecord(record)) throw new Error("not a record");
        // A journal entry is newer: the file is only left over from a move a crash interrupted.
        if (!this.live.has(record.taskId)) this.save(record);
        rmSync(file, { force: true });
      } catch {
        unreadable.push(name);
      }
    }
    return { records: [...this.live.values()], unreadable };
  }

  private append(line: string): void {
    if (this.lines > 2 * this.live.size + COMPACT_SLACK_LINES) this.compact();
    this.fd ??= this.open();
    writeSync(this.fd, `${line}\n`);
    this.lines++;
  }

  /** Opens for appending; a line a crash left torn is ended first, so the next one is not glued to it. */
  private open(): number {
    const fd = openSync(this.path, "a+");
    const size = fstatSync(fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) writeSync(fd, "\n");
    }
    return fd;
  }

  private compact(): void {
    this.close();
    const tmp = `${this.path}.tmp`;
    const body = [...this.live.values()].map((r) => `${JSON.stringify(r)}\n`).join("");
    writeFileSync(tmp, body);
    renameSync(tmp, this.path);
    this.lines = this.live.size;
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
