import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isAlive, waitFor } from "@capa/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { type ExecSpec, retireIdleSupervisors, TaskProcess } from "./executor.js";

const supervisorDir = mkdtempSync(join(tmpdir(), "capa-exec-test-"));
afterAll(() => rmSync(supervisorDir, { recursive: true, force: true }));

function run(command: string[], extra: Partial<ExecSpec> = {}) {
  let out = "";
  let err = "";
  let spawned = 0;
  const proc = TaskProcess.start(
    {
      command,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      cwd: tmpdir(),
      killGraceMs: 10_000,
      supervisorDir,
      ...extra,
    },
    {
      onSpawn: (pid) => {
        spawned = pid;
      },
      onOutput: (stream, data) => {
        if (stream === "stdout") out += data.toString();
        else err += data.toString();
      },
    },
  );
  return { proc, out: () => out, err: () => err, spawned: () => spawned };
}

describe("TaskProcess", () => {
  it("runs argv without a shell, with exactly the given environment and cwd", async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax, expanded by sh, not JavaScript
    const t = run(["/bin/sh", "-c", 'echo "$0|$ONLY|${HOME:-nohome}|$(pwd)"', "$NOT_EXPANDED"], {
      env: { ONLY: "yes" },
      cwd: "/",
    });
    const exit = await t.proc.exited;
    expect(exit).toEqual({ exitCode: 0, signal: "", cancelled: false });
    expect(t.out()).toBe("$NOT_EXPANDED|yes|nohome|/\n");
    expect(t.spawned()).toBe(t.proc.pid);
  });

  it("resolves a relative working dir against the agent's own", async () => {
    const t = run(["pwd"], { cwd: "." });
    expect(await t.proc.exited).toMatchObject({ exitCode: 0 });
    expect(t.out()).toBe(`${process.cwd()}\n`);
  });

  it("reports a non-zero exit code and captures stderr", async () => {
    const t = run(["sh", "-c", "echo oops >&2; exit 3"]);
    expect(await t.proc.exited).toEqual({ exitCode: 3, signal: "", cancelled: false });
    expect(t.err()).toBe("oops\n");
  });

  it("cancel sends SIGTERM to the whole process group", async () => {
    const t = run(["sh", "-c", "sleep 300 & echo $!; wait"]);
    const child = await waitFor(() => Number(t.out().trim()) || undefined, { what: "background pid" });
    expect(isAlive(child)).toBe(true);
    t.proc.cancel();
    const exit = await t.proc.exited;
    expect(exit).toMatchObject({ cancelled: true, signal: "SIGTERM", exitCode: 143 });
    await waitFor(() => !isAlive(child), { what: "grandchild gone" });
  });

  it("escalates to SIGKILL after the grace period when SIGTERM is ignored", async () => {
    const t = run(["sh", "-c", "trap '' TERM; echo ready; sleep 300"], { killGraceMs: 200 });
    await waitFor(() => t.out().includes("ready"), { what: "trap installed" });
    t.proc.cancel();
    expect(await t.proc.exited).toMatchObject({ cancelled: true, signal: "SIGKILL", exitCode: 137 });
  });

  it("kills what the task left running in its group after it exits", async () => {
    const t = run(["sh", "-c", "sleep 300 >/dev/null & echo $!"]);
    expect(await t.proc.exited).toMatchObject({ exitCode: 0, cancelled: false });
    const leftover = Number(t.out().trim());
    expect(leftover).toBeGreaterThan(0);
    await waitFor(() => !isAlive(leftover), { what: "leftover gone" });
  });

  it("reports the task's own pid, the leader of its process group, not the supervisor's", async () => {
    const t = run(["sh", "-c", "echo $$"]);
    expect(await t.proc.exited).toMatchObject({ exitCode: 0 });
    expect(Number(t.out().trim())).toBe(t.spawned());
    expect(t.proc.supervisorPid).toBeGreaterThan(0);
    expect(t.proc.supervisorPid).not.toBe(t.spawned());
  });

  it("kill sends SIGKILL to the whole group at once", async () => {
    const t = run(["sh", "-c", "trap '' TERM; sleep 300 & echo $!; wait"]);
    const child = await waitFor(() => Number(t.out().trim()) || undefined, { what: "background pid" });
    t.proc.kill();
    expect(await t.proc.exited).toMatchObject({ cancelled: true, signal: "SIGKILL", exitCode: 137 });
    await waitFor(() => !isAlive(child), { what: "grandchild gone" });
  });

  it("kills the task's group itself when the supervisor dies without reporting", async () => {
    const t = run(["sh", "-c", "sleep 300 & echo $!; wait"]);
    const child = await waitFor(() => Number(t.out().trim()) || undefined, { what: "background pid" });
    const leader = t.spawned();
    process.kill(t.proc.supervisorPid!, "SIGKILL");
    expect(await t.proc.exited).toMatchObject({ cancelled: false, signal: "SIGKILL", exitCode: 137 });
    await waitFor(() => !isAlive(child) && !isAlive(leader), { what: "the task's group gone" });
  });

  it("runs concurrent tasks under one shared supervisor, each with its own output and exit", async () => {
    const tasks = [1, 2, 3].map((n) => run(["sh", "-c", `echo out${n}; echo err${n} >&2; exit ${n}`]));
    const exits = await Promise.all(tasks.map((t) => t.proc.exited));
    expect(exits.map((e) => e.exitCode)).toEqual([1, 2, 3]);
    expect(tasks.map((t) => [t.out(), t.err()])).toEqual([1, 2, 3].map((n) => [`out${n}\n`, `err${n}\n`]));
    expect(new Set(tasks.map((t) => t.proc.supervisorPid)).size).toBe(1);
  });

  it("delivers all of a large output before the exit", async () => {
    const t = run(["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' a; echo"]);
    expect(await t.proc.exited).toMatchObject({ exitCode: 0 });
    expect(t.out().length).toBe(3_000_001);
  });

  it("a dead supervisor takes every task it ran down with it; the next task gets a new one", async () => {
    const tasks = [run(["sh", "-c", "sleep 300 & echo $!; wait"]), run(["sh", "-c", "sleep 300 & echo $!; wait"])];
    const children = await Promise.all(
      tasks.map((t) => waitFor(() => Number(t.out().trim()) || undefined, { what: "background pid" })),
    );
    const supervisorPid = tasks[0]!.proc.supervisorPid!;
    expect(tasks[1]!.proc.supervisorPid).toBe(supervisorPid);
    process.kill(supervisorPid, "SIGKILL");
    for (const t of tasks) expect(await t.proc.exited).toMatchObject({ signal: "SIGKILL", exitCode: 137 });
    await waitFor(() => children.every((c) => !isAlive(c)) && tasks.every((t) => !isAlive(t.spawned())), {
      what: "every task's group gone",
    });
    const next = run(["sh", "-c", "echo again"]);
    expect(await next.proc.exited).toEqual({ exitCode: 0, signal: "", cancelled: false });
    expect(next.out()).toBe("again\n");
    expect(next.proc.supervisorPid).not.toBe(supervisorPid);
  });

  it("an idle supervisor is retired (it exits) and the next task starts a new one", async () => {
    const first = run(["true"]);
    expect(await first.proc.exited).toMatchObject({ exitCode: 0 });
    const busy = run(["sleep", "300"]);
    await waitFor(() => busy.spawned() || undefined, { what: "the busy task running" });
    // Not while it has a task.
    retireIdleSupervisors();
    expect(isAlive(first.proc.supervisorPid!)).toBe(true);
    busy.proc.kill();
    await busy.proc.exited;
    retireIdleSupervisors();
    await waitFor(() => !isAlive(first.proc.supervisorPid!), { what: "the idle supervisor gone" });
    const next = run(["sh", "-c", "echo fresh"]);
    expect(await next.proc.exited).toMatchObject({ exitCode: 0 });
    expect(next.out()).toBe("fresh\n");
    expect(next.proc.supervisorPid).not.toBe(first.proc.supervisorPid);
  });

  it("drops an output connection without the token: nobody else on the host can write into a task's output", async () => {
    const t = run(["sh", "-c", "echo ready; sleep 1; echo done"]);
    await waitFor(() => t.out().includes("ready"), { what: "the task running" });
    const name = readFileSync("/proc/net/unix", "utf8")
      .split("\n")
      // Node binds abstract names padded with NULs to the full address length; /proc shows each NUL as "@".
      .map((line) => (line.split(/\s+/).at(-1) ?? "").replace(/@+$/, ""))
      .find((path) => path.startsWith(`@capa-agent-${process.pid}-`));
    expect(name).toBeDefined();
    // Every id this test file can have used, on both streams.
    let connected = 0;
    const forged = Array.from({ length: 40 }, (_, i) =>
      connect(`\0${name!.slice(1)}`).on("connect", function (this: Socket) {
        connected++;
        this.write(`not-the-token ${(i >> 1) + 1} ${i % 2 ? "stderr" : "stdout"}\nforged\n`);
      }),
    );
    await Promise.all(forged.map((c) => new Promise((r) => c.once("close", r).on("error", () => undefined))));
    expect(connected).toBe(40);
    expect(await t.proc.exited).toMatchObject({ exitCode: 0 });
    expect(t.out()).toBe("ready\ndone\n");
    expect(t.err()).toBe("");
  });

  it("reports a program that cannot be started", async () => {
    const t = run(["/nonexistent/program"]);
    const exit = await t.proc.exited;
    expect(exit).toMatchObject({ exitCode: 127, cancelled: false });
    expect(exit.spawnError?.message).toMatch(/ENOENT/);
    expect(t.spawned()).toBe(0);
  });
});
