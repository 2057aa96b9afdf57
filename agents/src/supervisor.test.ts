/**
 * The supervisor script on its own, through its protocol: spec on stdin, reports on fd 3, `term` / `kill` lines,
 * stdin EOF as "the agent is gone".
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { groupMembers, waitFor } from "@capa/testkit";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type SupervisorReport, type SupervisorSpec, supervisorScript } from "./supervisor.js";

const scriptDir = mkdtempSync(join(tmpdir(), "capa-supervisor-test-"));
afterAll(() => rmSync(scriptDir, { recursive: true, force: true }));

interface Supervised {
  child: ChildProcess;
  reports: () => SupervisorReport[];
  out: () => string;
  send: (line: string) => void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  pid: () => Promise<number>;
}

const started: number[] = [];

function supervise(command: string[], extra: Partial<SupervisorSpec> = {}): Supervised {
  const spec: SupervisorSpec = {
    command,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    cwd: tmpdir(),
    killGraceMs: 10_000,
    ...extra,
  };
  const child = spawn(process.execPath, [supervisorScript(scriptDir)], {
    env: {},
    detached: true,
    stdio: ["pipe", "pipe", "pipe", "pipe"],
  });
  const reports: SupervisorReport[] = [];
  let out = "";
  let buffered = "";
  (child.stdio[3] as Readable).on("data", (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) reports.push(JSON.parse(line) as SupervisorReport);
  });
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const stdin = child.stdin as Writable;
  stdin.on("error", () => undefined);
  stdin.write(`${JSON.stringify(spec)}\n`);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  );
  const pid = () =>
    waitFor(
      () => {
        const found = reports.find((r): r is { pid: number } => "pid" in r);
        if (found) started.push(found.pid);
        return found?.pid;
      },
      { what: "the task's pid report" },
    );
  return { child, reports: () => reports, out: () => out, send: (line) => stdin.write(`${line}\n`), exited, pid };
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

  it("reports the task's pid, the leader of its own process group, and passes its exit code through", async () => {
    const s = supervise(["sh", "-c", "echo hi; exit 7"]);
    const pid = await s.pid();
    expect(await s.exited).toEqual({ code: 7, signal: null });
    expect(s.reports()).toEqual([{ pid }, { exit: 7, signal: null }]);
    expect(s.out()).toBe("hi\n");
  });

  it("runs the task in its own process group, with stdin from /dev/null and no supervisor pipe", async () => {
    // The fd 3 test comes first: a command substitution's pipe would take the lowest free fd.
    const script = `if [ -e /proc/$$/fd/3 ]; then f=yes; else f=no; fi; echo "$(cut -d' ' -f5 /proc/$$/stat) $(readlink /proc/$$/fd/0) fd3=$f"`;
    const s = supervise(["sh", "-c", script]);
    const pid = await s.pid();
    expect((await s.exited).code).toBe(0);
    const [pgid, stdin, fd3] = s.out().trim().split(/\s+/);
    expect(Number(pgid)).toBe(pid);
    expect(pid).not.toBe(s.child.pid);
    expect(stdin).toBe("/dev/null");
    expect(fd3).toBe("fd3=no");
  });

  it("passes a signal death through as 128 + n and the signal's name", async () => {
    const s = supervise(["sh", "-c", "kill -USR1 $$"]);
    expect(await s.exited).toEqual({ code: 138, signal: null });
    expect(s.reports().at(-1)).toEqual({ exit: null, signal: "SIGUSR1" });
  });

  it("term: SIGTERM to the group, then SIGKILL after the grace to a tree that ignores SIGTERM", async () => {
    const s = supervise(["sh", "-c", "trap '' TERM; sleep 300 & sleep 300 & echo ready; wait"], { killGraceMs: 300 });
    const pid = await s.pid();
    await waitFor(() => s.out().includes("ready"), { what: "trap installed" });
    expect(groupMembers(pid)).toHaveLength(3);
    s.send("term");
    expect(await s.exited).toEqual({ code: 137, signal: null });
    expect(s.reports().at(-1)).toEqual({ exit: null, signal: "SIGKILL" });
    await waitFor(() => groupMembers(pid).length === 0, { what: "the whole group gone" });
  });

  it("term: a task that honours SIGTERM ends with it, its leftovers are killed", async () => {
    const s = supervise(["sh", "-c", "sleep 300 & echo ready; wait"]);
    const pid = await s.pid();
    await waitFor(() => s.out().includes("ready"), { what: "started" });
    s.send("term");
    expect(await s.exited).toEqual({ code: 143, signal: null });
    expect(s.reports().at(-1)).toEqual({ exit: null, signal: "SIGTERM" });
    await waitFor(() => groupMembers(pid).length === 0, { what: "the whole group gone" });
  });

  it("kill: SIGKILL to the group at once", async () => {
    const s = supervise(["sh", "-c", "trap '' TERM; sleep 300 & echo ready; wait"]);
    const pid = await s.pid();
    await waitFor(() => s.out().includes("ready"), { what: "started" });
    s.send("kill");
    expect((await s.exited).code).toBe(137);
    await waitFor(() => groupMembers(pid).length === 0, { what: "the whole group gone" });
  });

  it("stdin EOF (the agent died): TERM, then KILL after the grace, then exits", async () => {
    const s = supervise(["sh", "-c", "trap '' TERM; sleep 300 & sleep 300 & echo ready; wait"], { killGraceMs: 300 });
    const pid = await s.pid();
    await waitFor(() => s.out().includes("ready"), { what: "trap installed" });
    s.child.stdin?.end();
    expect(await s.exited).toEqual({ code: 137, signal: null });
    await waitFor(() => groupMembers(pid).length === 0, { what: "the whole group gone" });
  });

  it("SIGTERM to the supervisor stops the task like term", async () => {
    const s = supervise(["sh", "-c", "sleep 300 & echo ready; wait"]);
    const pid = await s.pid();
    await waitFor(() => s.out().includes("ready"), { what: "started" });
    s.child.kill("SIGTERM");
    expect(await s.exited).toEqual({ code: 143, signal: null });
    await waitFor(() => groupMembers(pid).length === 0, { what: "the whole group gone" });
  });

  it("reports a program that cannot be started", async () => {
    const s = supervise(["/nonexistent/program"]);
    expect(await s.exited).toEqual({ code: 127, signal: null });
    expect(s.reports()).toEqual([{ error: expect.stringMatching(/ENOENT/), code: "ENOENT" }]);
  });

  it("exits without starting anything when stdin closes before the spec", async () => {
    const child = spawn(process.execPath, [supervisorScript(scriptDir)], {
      env: {},
      stdio: ["pipe", "ignore", "ignore", "pipe"],
    });
    child.stdin?.end();
    const code = await new Promise((r) => child.once("exit", r));
    expect(code).toBe(1);
  });
});
