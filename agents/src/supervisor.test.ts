/**
 * The supervisor script on its own, through its protocol: `start` / `term` / `kill` lines on stdin for tasks named
 * by id, reports on fd 3, output on connections to a unix socket that name their task, stdin EOF as "the agent is
 * gone" (for every task it has).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { groupMembers, isAlive, waitFor } from "@capa/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type SupervisorCommand, type SupervisorReport, supervisorScript } from "./supervisor.js";

const scriptDir = mkdtempSync(join(tmpdir(), "capa-supervisor-test-"));
let supervisors = 0;
const ADDRESS = `\0capa-supervisor-test-${process.pid}`;
/** What arrived on each output connection, by its header line (`<token> <id> <stream>`), header included. */
const received = new Map<string, string>();
let server: Server;

beforeAll(async () => {
  let n = 0;
  server = createServer((socket) => {
    const key = `connection-${n++}`;
    received.set(key, "");
    socket.on("data", (d: Buffer) => received.set(key, received.get(key) + d.toString()));
  });
  await new Promise<void>((r) => server.listen(ADDRESS, r));
});
afterAll(() => {
  server.close();
  rmSync(scriptDir, { recursive: true, force: true });
});

/** The output of task `id` on `stream` under `token`, as the agent would see it after the header. */
function outputOf(token: string, id: number, stream: "stdout" | "stderr"): string {
  const header = `${token} ${id} ${stream}\n`;
  for (const text of received.values()) if (text.startsWith(header)) return text.slice(header.length);
  return "";
}

interface Supervised {
  child: ChildProcess;
  reports: () => SupervisorReport[];
  send: (command: SupervisorCommand) => void;
  start: (id: number, command: string[], extra?: { killGraceMs?: number; output?: boolean }) => void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  pid: (id: number) => Promise<number>;
  end: (id: number) => Promise<SupervisorReport>;
  output: (id: number, stream?: "stdout" | "stderr") => string;
}

const started: number[] = [];

function supervisor(): Supervised {
  // A token of its own, so that task ids (1, 2, ... in every test) name this supervisor's tasks only.
  const token = `token-${supervisors++}`;
  const child = spawn(process.execPath, [supervisorScript(scriptDir)], {
    env: {},
    detached: true,
    stdio: ["pipe", "ignore", "inherit", "pipe"],
  });
  started.push(child.pid!);
  const reports: SupervisorReport[] = [];
  let buffered = "";
  (child.stdio[3] as Readable).on("data", (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) reports.push(JSON.parse(line) as SupervisorReport);
  });
  const stdin = child.stdin as Writable;
  stdin.on("error", () => undefined);
  const send = (command: SupervisorCommand) => stdin.write(`${JSON.stringify(command)}\n`);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  );
  const pid = (id: number) =>
    waitFor(
      () => {
        const found = reports.find((r): r is { id: number; pid: number } => r.id === id && "pid" in r);
        if (found) started.push(found.pid);
        return found?.pid;
      },
      { what: `task ${id}'s pid report` },
    );
  const end = (id: number) =>
    waitFor(() => reports.find((r) => r.id === id && !("pid" in r)), { what: `task ${id}'s end report` });
  const start = (id: number, command: string[], extra: { killGraceMs?: number; output?: boolean } = {}) =>
    send({
      start: id,
      command,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      cwd: tmpdir(),
      killGraceMs: extra.killGraceMs ?? 10_000,
      ...(extra.output === false ? {} : { output: { address: ADDRESS, token } }),
    });
  const output = (id: number, stream: "stdout" | "stderr" = "stdout") => outputOf(token, id, stream);
  return { child, reports: () => reports, send, start, exited, pid, end, output };
}

describe("task supervisor", () => {
  afterEach(() => {
    for (const pid of started.splice(0)) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  });

  it("reports each task's pid and exit by id; output arrives on the task's own connections, after the header", async () => {
    const s = supervisor();
    s.start(1, ["sh", "-c", "echo one; echo err1 >&2; exit 7"]);
    s.start(2, ["sh", "-c", "echo two"]);
    const [one, two] = [await s.pid(1), await s.pid(2)];
    expect(await s.end(1)).toEqual({ id: 1, exit: 7, signal: null });
    expect(await s.end(2)).toEqual({ id: 2, exit: 0, signal: null });
    expect(s.reports().filter((r) => r.id === 1)).toEqual([
      { id: 1, pid: one },
      { id: 1, exit: 7, signal: null },
    ]);
    expect(two).not.toBe(one);
    await waitFor(() => s.output(1) === "one\n" && s.output(1, "stderr") === "err1\n" && s.output(2) === "two\n", {
      what: "both tasks' output",
    });
    // It stays for the next task.
    expect(isAlive(s.child.pid!)).toBe(true);
    s.child.stdin?.end();
    expect(await s.exited).toEqual({ code: 0, signal: null });
  });

  it("runs a task in its own process group, as the supervisor's child, with stdin from /dev/null and no supervisor pipe", async () => {
    // The fd 3 test comes first: a command substitution's pipe would take the lowest free fd.
    const script = `if [ -e /proc/$$/fd/3 ]; then f=yes; else f=no; fi; echo "$(cut -d' ' -f4,5 /proc/$$/stat) $(readlink /proc/$$/fd/0) fd3=$f"`;
    const s = supervisor();
    s.start(1, ["sh", "-c", script]);
    const pid = await s.pid(1);
    expect(await s.end(1)).toMatchObject({ exit: 0 });
    await waitFor(() => s.output(1).includes("fd3"), { what: "the task's output" });
    const [ppid, pgid, stdin, fd3] = s.output(1).trim().split(/\s+/);
    expect(Number(ppid)).toBe(s.child.pid);
    expect(Number(pgid)).toBe(pid);
    expect(stdin).toBe("/dev/null");
    expect(fd3).toBe("fd3=no");
  });

  it("without an output address, a task's stdout and stderr are /dev/null", async () => {
    const s = supervisor();
    s.start(
      1,
      ["sh", "-c", '[ "$(readlink /proc/$$/fd/1)" = /dev/null ] && [ "$(readlink /proc/$$/fd/2)" = /dev/null ]'],
      {
        output: false,
      },
    );
    expect(await s.end(1)).toEqual({ id: 1, exit: 0, signal: null });
  });

  it("passes a signal death through as the signal's name", async () => {
    const s = supervisor();
    s.start(1, ["sh", "-c", "kill -USR1 $$"]);
    expect(await s.end(1)).toEqual({ id: 1, exit: null, signal: "SIGUSR1" });
  });

  it("term: SIGTERM to that task's group only, then SIGKILL after its grace to a tree that ignores SIGTERM", async () => {
    const s = supervisor();
    s.start(1, ["sh", "-c", "trap '' TERM; sleep 300 & sleep 300 & echo ready; wait"], { killGraceMs: 300 });
    s.start(2, ["sh", "-c", "sleep 300 & echo ready; wait"]);
    const [pid, other] = [await s.pid(1), await s.pid(2)];
    await waitFor(() => s.output(1).includes("ready") && s.output(2).includes("ready"), { what: "traps installed" });
    expect(groupMembers(pid)).toHaveLength(3);
    s.send({ term: 1 });
    expect(await s.end(1)).toEqual({ id: 1, exit: null, signal: "SIGKILL" });
    await waitFor(() => groupMembers(pid).length === 0, { what: "the whole group gone" });
    // The other task was not touched.
    expect(groupMembers(other)).toHaveLength(2);
    s.send({ term: 2 });
    expect(await s.end(2)).toEqual({ id: 2, exit: null, signal: "SIGTERM" });
    await waitFor(() => groupMembers(other).length === 0, { what: "the other group gone" });
  });

  it("kill: SIGKILL to the group at once", async () => {
    const s = supervisor();
    s.start(1, ["sh", "-c", "trap '' TERM; sleep 300 & echo ready; wait"]);
    const pid = await s.pid(1);
    await waitFor(() => s.output(1).includes("ready"), { what: "started" });
    s.send({ kill: 1 });
    expect(await s.end(1)).toEqual({ id: 1, exit: null, signal: "SIGKILL" });
    await waitFor(() => groupMembers(pid).length === 0, { what: "the whole group gone" });
  });

  it("term right after start, before the task runs: it is stopped as soon as it starts", async () => {
    const s = supervisor();
    s.start(1, ["sleep", "300"]);
    s.send({ term: 1 });
    expect(await s.end(1)).toEqual({ id: 1, exit: null, signal: "SIGTERM" });
  });

  it("kills what a task left running in its group after it exits", async () => {
    const s = supervisor();
    s.start(1, ["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"]);
    expect(await s.end(1)).toEqual({ id: 1, exit: 0, signal: null });
    await waitFor(() => Number(s.output(1).trim()) > 0, { what: "the leftover's pid" });
    const leftover = Number(s.output(1).trim());
    await waitFor(() => !isAlive(leftover), { what: "leftover gone" });
  });

  it("stdin EOF (the agent died): every task gets SIGTERM, SIGKILL after its own grace, then it exits", async () => {
    const s = supervisor();
    s.start(1, ["sh", "-c", "trap '' TERM; sleep 300 & sleep 300 & echo ready; wait"], { killGraceMs: 300 });
    s.start(2, ["sh", "-c", "trap '' TERM; sleep 300 & echo ready; wait"], { killGraceMs: 600 });
    s.start(3, ["sh", "-c", "sleep 300 & echo ready; wait"]);
    const pids = [await s.pid(1), await s.pid(2), await s.pid(3)];
    await waitFor(() => [1, 2, 3].every((id) => s.output(id).includes("ready")), { what: "traps installed" });
    s.child.stdin?.end();
    expect(await s.exited).toEqual({ code: 0, signal: null });
    expect(s.reports().filter((r) => !("pid" in r))).toEqual(
      expect.arrayContaining([
        { id: 1, exit: null, signal: "SIGKILL" },
        { id: 2, exit: null, signal: "SIGKILL" },
        { id: 3, exit: null, signal: "SIGTERM" },
      ]),
    );
    for (const pid of pids) await waitFor(() => groupMembers(pid).length === 0, { what: `group ${pid} gone` });
  });

  it("stdin EOF right behind a start: the task is started and then stopped, never left running", async () => {
    const s = supervisor();
    s.start(1, ["sleep", "300"], { output: false });
    s.child.stdin?.end();
    expect(await s.exited).toEqual({ code: 0, signal: null });
    const pid = s.reports().find((r): r is { id: number; pid: number } => "pid" in r)?.pid;
    if (pid !== undefined) expect(groupMembers(pid)).toHaveLength(0);
  });

  it("a start whose output connections fail is reported as an error and never runs", async () => {
    const s = supervisor();
    s.send({
      start: 1,
      command: ["sh", "-c", "echo should not run"],
      env: {},
      cwd: tmpdir(),
      killGraceMs: 1000,
      output: { address: `\0capa-nobody-listens-${process.pid}`, token: "unused" },
    });
    expect(await s.end(1)).toMatchObject({ id: 1, error: expect.stringMatching(/ECONNREFUSED/) });
    expect(s.reports().some((r) => "pid" in r)).toBe(false);
  });

  it("SIGTERM to the supervisor stops every task like term, and it goes on serving", async () => {
    const s = supervisor();
    s.start(1, ["sh", "-c", "sleep 300 & echo ready; wait"]);
    s.start(2, ["sh", "-c", "sleep 300 & echo ready; wait"]);
    const pids = [await s.pid(1), await s.pid(2)];
    await waitFor(() => s.output(1).includes("ready") && s.output(2).includes("ready"), { what: "started" });
    s.child.kill("SIGTERM");
    expect(await s.end(1)).toEqual({ id: 1, exit: null, signal: "SIGTERM" });
    expect(await s.end(2)).toEqual({ id: 2, exit: null, signal: "SIGTERM" });
    for (const pid of pids) await waitFor(() => groupMembers(pid).length === 0, { what: `group ${pid} gone` });
    s.start(3, ["true"]);
    expect(await s.end(3)).toEqual({ id: 3, exit: 0, signal: null });
  });

  it("reports a program that cannot be started", async () => {
    const s = supervisor();
    s.start(1, ["/nonexistent/program"]);
    expect(await s.end(1)).toEqual({ id: 1, error: expect.stringMatching(/ENOENT/), code: "ENOENT" });
    s.child.stdin?.end();
    expect(await s.exited).toEqual({ code: 0, signal: null });
  });

  it("exits at once when stdin closes while it has no task", async () => {
    const s = supervisor();
    s.child.stdin?.end();
    expect(await s.exited).toEqual({ code: 0, signal: null });
  });
});
