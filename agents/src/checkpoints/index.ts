/**
 * Checkpoints on the agent (`checkpoint: {dir, every}`).
 *
 * Completeness: a checkpoint is COMPLETE when it is an entry (a file or a directory) directly in
 * `$CAPA_CHECKPOINT_DIR` whose name does not start with ".". A task writes a checkpoint under a dot-name
 * (`.step-40.tmp`) and publishes it with one rename(2) to its final name (`step-40`), which is atomic on one
 * filesystem, so the agent never reports — and a resumed task never reads — a half-written checkpoint. The newest
 * complete checkpoint is the entry with the latest modification time (name breaks ties); for a directory the
 * time of its newest file counts, so a directory renamed into place after its files were written is dated by them.
 *
 * Resume: a re-placed, preempted or retried task whose assignment names a checkpoint starts with
 * `$CAPA_RESUME_FROM` pointing at a local copy under `<taskDir>/resume/<name>`: copied from the checkpoint dir when
 * this agent wrote it, or fetched through the scheduler (see transfer.ts) when another agent did.
 */
import { cpSync, lstatSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { DEFAULT_CHECKPOINT_DIR, type TaskAssignment } from "@capa/domain";

/** What the agent sees of a complete checkpoint. */
export interface FoundCheckpoint {
  name: string;
  sizeBytes: number;
  createdAtMs: number;
  /** Absolute path of the entry. */
  path: string;
}

/** Bounds the walk of one checkpoint directory: a checkpoint of more entries than this is measured partially. */
const MAX_ENTRIES = 100_000;

/** `<workDir>/tasks/<taskId>`: the task's own directory. */
export function taskDir(a: Pick<TaskAssignment, "taskId">, workDir: string): string {
  return join(workDir, "tasks", a.taskId);
}

/** $CAPA_CHECKPOINT_DIR of a task: the policy's dir relative to the task's directory (or absolute). */
export function checkpointDirOf(a: TaskAssignment, workDir: string): string | undefined {
  const policy = a.checkpoint;
  if (!policy) return undefined;
  const dir = policy.dir || DEFAULT_CHECKPOINT_DIR;
  return isAbsolute(dir) ? dir : resolve(taskDir(a, workDir), dir);
}

/** Size and newest mtime of an entry (recursive for directories, symlinks not followed). */
function measure(path: string, budget: { left: number }): { size: number; mtimeMs: number } {
  const st = lstatSync(path);
  if (!st.isDirectory()) return { size: st.isFile() ? st.size : 0, mtimeMs: st.mtimeMs };
  let size = 0;
  let mtimeMs = st.mtimeMs;
  for (const name of readdirSync(path)) {
    if (--budget.left < 0) break;
    const inner = measure(join(path, name), budget);
    size += inner.size;
    mtimeMs = Math.max(mtimeMs, inner.mtimeMs);
  }
  return { size, mtimeMs };
}

/** The newest complete checkpoint in `dir`; undefined when there is none (or the dir does not exist). */
export function newestCheckpoint(dir: string): FoundCheckpoint | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  let best: FoundCheckpoint | undefined;
  for (const name of names) {
    if (name.startsWith(".")) continue; // in progress (or hidden): not a published checkpoint
    const path = join(dir, name);
    try {
      const { size, mtimeMs } = measure(path, { left: MAX_ENTRIES });
      const createdAtMs = Math.floor(mtimeMs);
      if (!best || createdAtMs > best.createdAtMs || (createdAtMs === best.createdAtMs && name > best.name))
        best = { name, sizeBytes: size, createdAtMs, path };
    } catch {
      // Removed while we looked (the task rotates old checkpoints): not a candidate.
    }
  }
  return best;
}

/** `<taskDir>/resume`: where resumed-from copies are placed; emptied before each run that resumes. */
export function resumeDirOf(a: TaskAssignment, workDir: string): string {
  return join(taskDir(a, workDir), "resume");
}

/**
 * Copies checkpoint `name`, written on this agent by task `writer` (this task, or another rank of its gang), out
 * of that task's checkpoint dir into this task's resume dir; returns the copy's path, or undefined when the
 * checkpoint is no longer there.
 */
export function copyLocalCheckpoint(
  a: TaskAssignment,
  workDir: string,
  name: string,
  writer: string = a.taskId,
): string | undefined {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(writer)) return undefined; // a path segment, never a way out of tasks/
  const dir = checkpointDirOf({ ...a, taskId: writer }, workDir);
  if (!dir || name.includes("/") || name.startsWith(".")) return undefined;
  const from = join(dir, name);
  try {
    lstatSync(from);
  } catch {
    return undefined;
  }
  const to = join(freshResumeDir(a, workDir), name);
  cpSync(from, to, { recursive: true, preserveTimestamps: true });
  return to;
}

/** The resume dir, emptied (an earlier run's copy must not be mistaken for this run's). */
export function freshResumeDir(a: TaskAssignment, workDir: string): string {
  const dir = resumeDirOf(a, workDir);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
