/**
 * Task records on disk, and the kill of what a previous life of the agent left behind: a task's process group and
 * its supervisor, each only if the recorded pid is still the process it was (its kernel start time matches).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { groupMembers, isAlive, neverKilled, waitFor } from "@capa/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { type SupervisorCommand, type SupervisorReport, supervisorScript } from "./supervisor.js";
import {
  JOURNAL_FILE,
  killOrphanGroup,
  processStartTicks,
  readJournal,
  type TaskRecord,
  TaskRecords,
} from "./task-records.js";

const lines = (path: string): string[] =>
  existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean) : [];

/** Process groups started here; whatever is left of them is killed after each test. */
const groups: number[] = [];
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "capa-task-records-"));
  dirs.push(dir);
  return dir;
}

/** A detached `sleep`, leader of its own process group. */
function sleeper(): ChildProcess {
  const child = spawn("sleep", ["300"], { detached: true, stdio: "ignore" });
  groups.push(child.pid!);
  return child;
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

/**
 * What a crashed agent can leave behind: a real supervisor, started as the executor starts it, whose agent is gone
 * (stdin closed) while its task, which ignores SIGTERM, is in a long kill grace. Resolves once the task has had its
 * SIGTERM (it writes "term" to `marker`) and carries on.
 */
async function leftoverSupervisor(dir: string): Promise<{ supervisor: ChildProcess; taskPid: number; marker: string }> {
  const marker = join(dir, "task.marker");
  // No output address: its output goes to /dev/null.
  const spec: SupervisorCommand = {
    start: 1,
    command: [
      "sh",
      "-c",
      `trap '' TERM; sleep 300 & sleep 300 & trap 'echo term >> ${marker}' TERM; echo ready >> ${marker}; ` +
        `while :; do wait; done`,
    ],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    cwd: dir,
    killGraceMs: 600_000,
  };
  const supervisor = spawn(process.execPath, [supervisorScript(join(dir, "bin"))], {
    env: {},
    detached: true,
    stdio: ["pipe", "ignore", "ignore", "pipe"],
  });
  groups.push(supervisor.pid!);
  const reports: SupervisorReport[] = [];
  let buffered = "";
  (supervisor.stdio[3] as Readable).on("data", (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    for (const line of parts) reports.push(JSON.parse(line) as SupervisorReport);
  });
  const stdin = supervisor.stdin as Writable;
  stdin.on("error", () => undefined);
  stdin.write(`${JSON.stringify(spec)}\n`);
  const taskPid = await waitFor(() => reports.find((r): r is { id: number; pid: number } => "pid" in r)?.pid, {
    what: "the task's pid report",
  });
  groups.push(taskPid);
  await waitFor(() => lines(marker).includes("ready"), { what: "the task's traps installed" });
  // The agent is gone: the supervisor sends SIGTERM, which the task survives, and waits out the grace.
  stdin.end();
  await waitFor(() => lines(marker).includes("term"), { what: "the task's SIGTERM" });
  expect(groupMembers(taskPid)).toHaveLength(3);
  expect(isAlive(supervisor.pid!)).toBe(true);
  return { supervisor, taskPid, marker };
}

function record(fields: Partial<TaskRecord>): TaskRecord {
  return { taskId: "t-1", jobId: "job-1", epoch: 3, bootId: "previous-boot", gpuIndices: [0], ...fields };
}

/** Start ticks that are not the process's: what a record of an earlier process with the same pid holds. */
const otherTicks = (pid: number): string => String(Number(processStartTicks(pid)) + 1);

describe("task records", () => {
  afterEach(() => {
    for (const group of groups.splice(0)) {
      try {
        process.kill(-group, "SIGKILL");
      } catch {
        // gone
      }
    }
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("round-trips records with both pids, and names the unreadable files", () => {
    const dir = tempDir();
    const records = new TaskRecords(dir);
    const saved = record({ pid: 10, pidStartTicks: "100", supervisorPid: 9, supervisorStartTicks: "99" });
    records.save(saved);
    records.save(record({ taskId: "t-2", final: undefined }));
    writeFileSync(join(records.dir, "junk.json"), "{");
    writeFileSync(join(records.dir, "other.txt"), "not a record");
    const { records: found, unreadable } = records.loadAll();
    expect(found.sort((a, b) => a.taskId.localeCompare(b.taskId))).toEqual([saved, record({ taskId: "t-2" })]);
    expect(unreadable).toEqual(["junk.json"]);
    records.remove("t-1");
    expect(records.loadAll().records.map((r) => r.taskId)).toEqual(["t-2"]);
  });

  it("keeps every save and removal in the journal, so the next life reads the last word on each task", () => {
    const dir = tempDir();
    const first = new TaskRecords(dir);
    first.save(record({ taskId: "t-1", final: undefined }));
    first.save(record({ taskId: "t-2", final: undefined }));
    const finished = record({ taskId: "t-1", pid: 10, pidStartTicks: "100" });
    first.save(finished);
    first.remove("t-2");
    first.close();
    expect(lines(join(first.dir, JOURNAL_FILE))).toHaveLength(4);
    const next = new TaskRecords(dir).loadAll();
    expect(next).toEqual({ records: [finished], unreadable: [] });
  });

  it("skips a line a crash left torn, and does not glue the next save to it", () => {
    const dir = tempDir();
    const first = new TaskRecords(dir);
    first.save(record({ taskId: "t-1" }));
    first.close();
    const journal = join(first.dir, JOURNAL_FILE);
    writeFileSync(journal, `${readFileSync(journal, "utf8")}{"taskId":"t-2","ep`);
    const next = new TaskRecords(dir);
    expect(next.loadAll()).toEqual({ records: [record({ taskId: "t-1" })], unreadable: [`${JOURNAL_FILE} line 2`] });
    next.save(record({ taskId: "t-3" }));
    next.close();
    const { records, unreadable } = readJournal(journal);
    expect([...records.keys()]).toEqual(["t-1", "t-3"]);
    expect(unreadable).toEqual([2]);
  });

  it("moves the one-file-per-task records of an older agent into the journal", () => {
    const dir = tempDir();
    const legacy = record({ taskId: "t-old", final: undefined, pid: 7, pidStartTicks: "70" });
    const records = new TaskRecords(dir);
    writeFileSync(join(records.dir, "t-old.json"), JSON.stringify(legacy));
    expect(records.loadAll().records).toEqual([legacy]);
    expect(existsSync(join(records.dir, "t-old.json"))).toBe(false);
    records.close();
    expect(new TaskRecords(dir).loadAll().records).toEqual([legacy]);
  });

  it("rewrites a journal grown long with only the live records", () => {
    const dir = tempDir();
    const records = new TaskRecords(dir);
    for (let i = 0; i < 2_000; i++) {
      records.save(record({ taskId: `t-${i}`, final: undefined }));
      records.save(record({ taskId: `t-${i}` }));
      if (i % 100 !== 0) records.remove(`t-${i}`);
    }
    records.close();
    const journal = join(records.dir, JOURNAL_FILE);
    expect(lines(journal).length).toBeLessThan(1_000);
    const kept = readJournal(journal).records;
    expect([...kept.keys()].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `t-${i * 100}`).sort());
    expect(kept.get("t-100")).toEqual(record({ taskId: "t-100" }));
  });

  it("reads a process's kernel start time, and nothing for a process that does not exist", async () => {
    const child = sleeper();
    const ticks = processStartTicks(child.pid!);
    expect(ticks).toMatch(/^\d+$/);
    expect(processStartTicks(child.pid!)).toBe(ticks);
    child.kill("SIGKILL");
    await exitOf(child);
    expect(processStartTicks(child.pid!)).toBeUndefined();
  });

  it("kills a leftover supervisor in its grace and its task's whole group", async () => {
    const dir = tempDir();
    const { supervisor, taskPid, marker } = await leftoverSupervisor(dir);
    const killed = killOrphanGroup(
      record({
        pid: taskPid,
        pidStartTicks: processStartTicks(taskPid),
        supervisorPid: supervisor.pid,
        supervisorStartTicks: processStartTicks(supervisor.pid!),
      }),
    );
    expect(killed).toBe(true);
    // SIGKILLed, not exited on its own after killing the task (its grace has 10 minutes to go).
    expect(await exitOf(supervisor)).toEqual({ code: null, signal: "SIGKILL" });
    await waitFor(() => groupMembers(taskPid).length === 0, { what: "every process of the task's group gone" });
    expect(lines(marker)).toEqual(["ready", "term"]);
  });

  it("kills the task's group when its supervisor is already gone", async () => {
    const task = spawn("sh", ["-c", "sleep 300 & sleep 300; wait"], { detached: true, stdio: "ignore" });
    groups.push(task.pid!);
    await waitFor(() => groupMembers(task.pid!).length === 3, { what: "sh and both sleeps" });
    const gone = sleeper();
    const goneTicks = processStartTicks(gone.pid!);
    gone.kill("SIGKILL");
    await exitOf(gone);
    const killed = killOrphanGroup(
      record({
        pid: task.pid,
        pidStartTicks: processStartTicks(task.pid!),
        supervisorPid: gone.pid,
        supervisorStartTicks: goneTicks,
      }),
    );
    expect(killed).toBe(true);
    await waitFor(() => groupMembers(task.pid!).length === 0, { what: "every process of the task's group gone" });
  });

  it("leaves alone processes that reuse the recorded pids (other start times), or that it cannot tell apart", async () => {
    const task = sleeper();
    const supervisor = sleeper();
    const reused = record({
      pid: task.pid,
      pidStartTicks: otherTicks(task.pid!),
      supervisorPid: supervisor.pid,
      supervisorStartTicks: otherTicks(supervisor.pid!),
    });
    expect(killOrphanGroup(reused)).toBe(false);
    // No start time recorded (no /proc when it was written): never a guess.
    expect(killOrphanGroup(record({ pid: task.pid, supervisorPid: supervisor.pid }))).toBe(false);
    expect(neverKilled(task.pid!)).toBe(true);
    expect(neverKilled(supervisor.pid!)).toBe(true);
  });

  it("kills a supervisor whose start time matches even where the task's pid was reused", async () => {
    const dir = tempDir();
    const { supervisor, taskPid } = await leftoverSupervisor(dir);
    const killed = killOrphanGroup(
      record({
        pid: taskPid,
        pidStartTicks: otherTicks(taskPid),
        supervisorPid: supervisor.pid,
        supervisorStartTicks: processStartTicks(supervisor.pid!),
      }),
    );
    // The group's pid did not match: not reported killed, and left alone.
    expect(killed).toBe(false);
    expect(await exitOf(supervisor)).toEqual({ code: null, signal: "SIGKILL" });
    for (const pid of groupMembers(taskPid)) expect(neverKilled(pid)).toBe(true);
    expect(groupMembers(taskPid)).toHaveLength(3);
  });
});
