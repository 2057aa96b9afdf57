/**
 * Child-process lifecycle of one task. The command runs from its argv (no shell, unless the argv itself is
 * `sh -c ...`) in its own process group, so a cancel reaches everything the task started: SIGTERM to the group,
 * SIGKILL after the grace period. When the main process exits on its own, leftovers in the group are killed too:
 * a forgotten background process would otherwise keep GPUs busy after the agent has reported them free.
 *
 * The task is started through a per-task supervisor (supervisor.ts), which owns the task's process group and kills
 * it when the agent dies: a pipe from the agent is its lifeline. Everything the rest of the agent sees is the task's
 * own: its pid (the group leader), its output (it inherits the supervisor's stdout and stderr, our pipes), its exit
 * code and signal (reported by the supervisor on fd 3).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";
import { resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import { REPORT_FD, type SupervisorReport, type SupervisorSpec, supervisorScript } from "./supervisor.js";

export interface ExecSpec {
  command: readonly string[];
  /** The complete environment: nothing is inherited implicitly. */
  env: Record<string, string>;
  cwd: string;
  /** Grace between SIGTERM and SIGKILL on cancel, and when the agent dies. */
  killGraceMs: number;
  /** Where the supervisor script is written (`<workDir>/bin`); a private temporary dir when absent. */
  supervisorDir?: string;
}

export interface ExecHandlers {
  onSpawn(pid: number): void;
  onOutput(stream: "stdout" | "stderr", data: Buffer): void;
}

export interface ExecExit {
  /** Exit status; for a signal death 128 + signal number, as shells report it. */
  exitCode: number;
  /** Signal that ended the process, "" if it exited. */
  signal: string;
  /** cancel() was called before it ended. */
  cancelled: boolean;
  /** The program could not be started (ENOENT, EACCES); nothing ran. */
  spawnError?: Error;
}

/** How long to wait for output pipes after exit; a process that escaped the group (setsid) can hold them. */
const PIPE_DRAIN_MS = 2_000;

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the whole group is gone already.
  }
}

function signalNumber(signal: string | null | undefined): number {
  return signal ? (constants.signals[signal as NodeJS.Signals] ?? 0) : 0;
}

function spawnError(report: { error: string; code?: string }): Error {
  return Object.assign(new Error(report.error), report.code ? { code: report.code } : {});
}

export class TaskProcess {
  readonly exited: Promise<ExecExit>;
  /** The task's pid, leader of its process group; known once it runs. */
  pid: number | undefined;
  /** The supervisor's pid (its own process group too). */
  readonly supervisorPid: number | undefined;
  private cancelled = false;
  private done = false;
  private readonly control: Writable;

  private constructor(spec: ExecSpec, handlers: ExecHandlers) {
    const supervisorSpec: SupervisorSpec = {
      command: spec.command,
      env: spec.env,
      // Relative to the agent's cwd, as when the agent spawned tasks itself: the supervisor runs in "/".
      cwd: resolve(spec.cwd),
      killGraceMs: spec.killGraceMs,
    };
    // Detached: its own process group, so a terminal's Ctrl-C to the agent's group does not reach it. No
    // environment: the supervisor needs none, and NODE_OPTIONS & co. must not change how it runs.
    const child: ChildProcess = spawn(process.execPath, [supervisorScript(spec.supervisorDir)], {
      cwd: "/",
      env: {},
      detached: true,
      stdio: ["pipe", "pipe", "pipe", "pipe"],
    });
    this.supervisorPid = child.pid;
    const stdin = child.stdin as Writable;
    const stdout = child.stdout as Readable;
    const stderr = child.stderr as Readable;
    const reports = child.stdio[REPORT_FD] as Readable;
    this.control = stdin;
    // EPIPE once the supervisor has exited: nothing left to control.
    stdin.on("error", () => undefined);
    stdin.write(`${JSON.stringify(supervisorSpec)}\n`);
    stdout.on("data", (d: Buffer) => handlers.onOutput("stdout", d));
    stderr.on("data", (d: Buffer) => handlers.onOutput("stderr", d));

    let exitReport: { exit: number | null; signal: string | null } | undefined;
    let errorReport: { error: string; code?: string } | undefined;
    let buffered = "";
    reports.setEncoding("utf8");
    reports.on("data", (data: string) => {
      buffered += data;
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let report: SupervisorReport;
        try {
          report = JSON.parse(line) as SupervisorReport;
        } catch {
          continue;
        }
        if ("pid" in report) {
          this.pid = report.pid;
          handlers.onSpawn(report.pid);
        } else if ("exit" in report) {
          exitReport = report;
        } else if ("error" in report) {
          errorReport = report;
        }
      }
    });
    const closed = (s: Readable) => new Promise((r) => (s.closed || s.destroyed ? r(undefined) : s.once("close", r)));
    const reportsClosed = closed(reports);
    const pipesClosed = Promise.all([closed(stdout), closed(stderr)]);

    this.exited = new Promise<ExecExit>((resolve) => {
      child.once("error", (err) => {
        // 'error' without a pid = the supervisor never started; with a pid it is a kill failure, and 'exit' follows.
        if (child.pid !== undefined) return;
        this.finish();
        resolve({ exitCode: 127, signal: "", cancelled: this.cancelled, spawnError: err });
      });
      child.once("exit", async (code, signal) => {
        // The reports are complete once fd 3 is closed: only the supervisor holds it.
        await waitAtMost(reportsClosed, PIPE_DRAIN_MS);
        // A supervisor that died without reporting the task's end (killed itself) left the group to us.
        if (!exitReport && this.pid !== undefined) signalGroup(this.pid, "SIGKILL");
        this.finish();
        await waitAtMost(pipesClosed, PIPE_DRAIN_MS);
        stdout.destroy();
        stderr.destroy();
        reports.destroy();
        if (errorReport) {
          resolve({ exitCode: 127, signal: "", cancelled: this.cancelled, spawnError: spawnError(errorReport) });
          return;
        }
        const end = exitReport ?? { exit: code, signal };
        resolve({
          exitCode: end.exit ?? 128 + signalNumber(end.signal),
          signal: end.signal ?? "",
          cancelled: this.cancelled,
        });
      });
    });
  }

  static start(spec: ExecSpec, handlers: ExecHandlers): TaskProcess {
    return new TaskProcess(spec, handlers);
  }

  get running(): boolean {
    return !this.done;
  }

  /** SIGTERM to the process group now, SIGKILL after the grace period (the supervisor keeps the time). Idempotent. */
  cancel(): void {
    if (this.done || this.cancelled) return;
    this.cancelled = true;
    this.tell("term");
  }

  /** SIGKILL to the group without waiting for the grace period (shutdown deadline). */
  kill(): void {
    if (this.done) return;
    this.cancelled = true;
    this.tell("kill");
    // Also directly: the deadline has passed, so do not depend on the supervisor answering.
    if (this.pid !== undefined) signalGroup(this.pid, "SIGKILL");
  }

  private tell(command: "term" | "kill"): void {
    if (!this.control.destroyed && this.control.writable) this.control.write(`${command}\n`);
  }

  private finish(): void {
    this.done = true;
    this.control.destroy();
  }
}

async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise((r) => {
    timer = setTimeout(r, ms);
  });
  await Promise.race([p, limit]);
  clearTimeout(timer);
}
