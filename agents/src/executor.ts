/**
 * Child-process lifecycle of one task. The command runs from its argv (no shell, unless the argv itself is
 * `sh -c ...`) in its own process group, so a cancel reaches everything the task started: SIGTERM to the group,
 * SIGKILL after the grace period. When the main process exits on its own, leftovers in the group are killed too:
 * a forgotten background process would otherwise keep GPUs busy after the agent has reported them free.
 *
 * Tasks are started by the agent's task supervisor (supervisor.ts): one per work dir, shared by every task of the
 * agent, started with the first task and retired after a while without any. It owns the tasks' process groups and
 * kills them when the agent dies: its stdin, a pipe from the agent, is their lifeline. Everything the rest of the
 * agent sees is the task's own: its pid (the group leader), its output (two unix-socket connections the supervisor
 * hands the task as stdout and stderr, read here with no copy in between), its exit code and signal (reported by
 * the supervisor on fd 3). A supervisor that dies takes its tasks' guard with it: their groups are SIGKILLed here,
 * and the next task gets a new supervisor.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { constants, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import { processStartTicks } from "./proc-start.js";
import { REPORT_FD, type SupervisorCommand, type SupervisorReport, supervisorScript } from "./supervisor.js";

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
/**
 * A supervisor without tasks for this long is retired (its stdin closed: it exits at once), so an idle agent does
 * not keep a Node process's memory for nothing; the next task starts a new one (~50 ms of CPU, once).
 */
const SUPERVISOR_IDLE_MS = 60_000;
/** An output connection that has not named its task by then is not one of ours. */
const HEADER_TIMEOUT_MS = 10_000;
const MAX_HEADER_BYTES = 256;

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

type Stream = "stdout" | "stderr";

/** Tasks of this process by supervisor id, for reports and output connections to find theirs. */
const tasksById = new Map<number, TaskProcess>();
let lastId = 0;

/**
 * The agent's end of the tasks' output: one unix socket per process, on Linux in the abstract namespace (no file to
 * clean up, no path length limit). Anyone on the host could connect to it, so a connection counts only with the token,
 * which only the supervisors learn (on their stdin).
 */
let outputServer: { server: Server; address: string; token: string } | undefined;

function outputs(): { address: string; token: string } {
  if (outputServer) return outputServer;
  const token = randomBytes(16).toString("hex");
  const address =
    process.platform === "linux" ? `\0capa-agent-${process.pid}-${randomBytes(6).toString("hex")}` : socketFile();
  const server = createServer((socket) => acceptOutput(socket, token));
  // bind and listen happen in listen() itself: a supervisor told the address right after can connect.
  server.listen(address);
  // It serves tasks; it is no reason for the agent to stay up.
  server.unref();
  server.on("error", () => undefined);
  outputServer = { server, address, token };
  return outputServer;
}

/** Elsewhere (no abstract namespace) a socket file in a private dir of this process, removed with it. */
function socketFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "capa-out-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "s");
}

function acceptOutput(socket: Socket, token: string): void {
  let header = Buffer.alloc(0);
  socket.setTimeout(HEADER_TIMEOUT_MS, () => socket.destroy());
  socket.on("error", () => undefined);
  const onData = (data: Buffer) => {
    header = Buffer.concat([header, data]);
    const nl = header.indexOf(10);
    if (nl < 0) {
      if (header.length > MAX_HEADER_BYTES) socket.destroy();
      return;
    }
    socket.off("data", onData);
    socket.setTimeout(0);
    const [got, id, stream] = header.subarray(0, nl).toString("utf8").split(" ");
    const task = got === token ? tasksById.get(Number(id)) : undefined;
    if (!task || (stream !== "stdout" && stream !== "stderr")) {
      socket.destroy();
      return;
    }
    task.attach(stream, socket, header.subarray(nl + 1));
  };
  socket.on("data", onData);
}

/** The agent's side of one supervisor process. */
class Supervisor {
  readonly pid: number | undefined;
  /** False once it has exited, failed to start, or been retired: no new task goes to it. */
  usable = true;
  private readonly child: ChildProcess;
  private readonly stdin: Writable;
  private readonly reports: Readable;
  private readonly tasks = new Map<number, TaskProcess>();
  private idleTimer: NodeJS.Timeout | undefined;
  private startTicks: string | undefined;

  constructor(
    script: string,
    private readonly onGone: (s: Supervisor) => void,
  ) {
    // Detached: its own process group, so a terminal's Ctrl-C to the agent's group does not reach it. No
    // environment: the supervisor needs none, and NODE_OPTIONS & co. must not change how it runs. stderr is ours:
    // what a crashing supervisor says belongs in the agent's log.
    this.child = spawn(process.execPath, [script], {
      cwd: "/",
      env: {},
      detached: true,
      stdio: ["pipe", "ignore", "inherit", "pipe"],
    });
    this.pid = this.child.pid;
    this.stdin = this.child.stdin as Writable;
    this.reports = this.child.stdio[REPORT_FD] as Readable;
    // EPIPE once the supervisor has exited: nothing left to control.
    this.stdin.on("error", () => undefined);
    let buffered = "";
    this.reports.setEncoding("utf8");
    this.reports.on("data", (data: string) => {
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
        this.tasks.get(report.id)?.onReport(report);
      }
    });
    const reportsClosed = new Promise((r) =>
      this.reports.closed || this.reports.destroyed ? r(undefined) : this.reports.once("close", r),
    );
    this.child.once("error", (err) => {
      // 'error' without a pid = the supervisor never started; with a pid it is a kill failure, and 'exit' follows.
      if (this.child.pid !== undefined) return;
      this.gone();
      for (const task of this.tasks.values()) task.supervisorFailed(err);
    });
    this.child.once("exit", async (code, signal) => {
      this.gone();
      // The reports are complete once fd 3 is closed: only the supervisor holds it.
      await waitAtMost(reportsClosed, PIPE_DRAIN_MS);
      this.reports.destroy();
      // What is still listed lost its parent and guard with it.
      for (const task of this.tasks.values()) task.supervisorDied(code, signal);
    });
    this.setRef(false);
  }

  /** Its kernel start time, read once (every task's record carries it; /proc reads are not free). */
  get pidStartTicks(): string | undefined {
    if (this.startTicks === undefined && this.pid !== undefined) this.startTicks = processStartTicks(this.pid);
    return this.startTicks;
  }

  add(task: TaskProcess, id: number, command: SupervisorCommand): void {
    clearTimeout(this.idleTimer);
    if (this.tasks.size === 0) this.setRef(true);
    this.tasks.set(id, task);
    this.send(command);
  }

  remove(id: number): void {
    if (!this.tasks.delete(id) || this.tasks.size > 0) return;
    // Idle: no reason to keep the agent up, and in a while no reason to be at all.
    this.setRef(false);
    if (!this.usable) return;
    this.idleTimer = setTimeout(() => this.retire(), SUPERVISOR_IDLE_MS);
    this.idleTimer.unref();
  }

  send(command: SupervisorCommand): void {
    if (!this.stdin.destroyed && this.stdin.writable) this.stdin.write(`${JSON.stringify(command)}\n`);
  }

  /** Closes its stdin while it has no task: it exits at once. Taken off the list first, so no start can follow. */
  retire(): void {
    if (this.tasks.size > 0 || !this.usable) return;
    this.gone();
    this.stdin.end();
  }

  private gone(): void {
    if (!this.usable) return;
    this.usable = false;
    clearTimeout(this.idleTimer);
    this.onGone(this);
  }

  private setRef(ref: boolean): void {
    for (const h of [this.child, this.stdin as unknown as Socket, this.reports as unknown as Socket]) {
      if (ref) h.ref?.();
      else h.unref?.();
    }
  }
}

/** The live supervisor of each script path (one per work dir). */
const supervisors = new Map<string, Supervisor>();

/** @internal Retires every supervisor without tasks now, as the idle timer would (tests). */
export function retireIdleSupervisors(): void {
  for (const s of [...supervisors.values()]) s.retire();
}

/** Pids of the supervisors this process runs now (each serves every task of its work dir here). */
export function ownSupervisorPids(): Set<number> {
  const pids = new Set<number>();
  for (const s of supervisors.values()) if (s.pid !== undefined) pids.add(s.pid);
  return pids;
}

function supervisorFor(dir: string | undefined): Supervisor {
  const script = supervisorScript(dir);
  let s = supervisors.get(script);
  if (!s?.usable) {
    s = new Supervisor(script, (gone) => {
      if (supervisors.get(script) === gone) supervisors.delete(script);
    });
    supervisors.set(script, s);
  }
  return s;
}

export class TaskProcess {
  readonly exited: Promise<ExecExit>;
  /** The task's pid, leader of its process group; known once it runs. */
  pid: number | undefined;
  /** The pid of the supervisor that started it (its own process group; shared by the agent's tasks). */
  readonly supervisorPid: number | undefined;
  private cancelled = false;
  private done = false;
  private readonly id: number;
  private readonly supervisor: Supervisor;
  private resolveExit!: (exit: ExecExit) => void;
  private readonly streams: Partial<Record<Stream, Socket>> = {};
  private readonly streamClosed: Record<Stream, Promise<void>>;
  private readonly markClosed = {} as Record<Stream, () => void>;

  private constructor(
    spec: ExecSpec,
    private readonly handlers: ExecHandlers,
  ) {
    this.id = ++lastId;
    this.exited = new Promise<ExecExit>((r) => {
      this.resolveExit = r;
    });
    this.streamClosed = {
      stdout: new Promise((r) => {
        this.markClosed.stdout = r;
      }),
      stderr: new Promise((r) => {
        this.markClosed.stderr = r;
      }),
    };
    const output = outputs();
    this.supervisor = supervisorFor(spec.supervisorDir);
    this.supervisorPid = this.supervisor.pid;
    tasksById.set(this.id, this);
    this.supervisor.add(this, this.id, {
      start: this.id,
      command: spec.command,
      env: spec.env,
      // Relative to the agent's cwd, as when the agent spawned tasks itself: the supervisor runs in "/".
      cwd: resolve(spec.cwd),
      killGraceMs: spec.killGraceMs,
      output: { address: output.address, token: output.token },
    });
  }

  /** The supervisor's kernel start time (proc-start.ts), for the task's record. */
  get supervisorStartTicks(): string | undefined {
    return this.supervisor.pidStartTicks;
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
    this.supervisor.send({ term: this.id });
  }

  /** SIGKILL to the group without waiting for the grace period (shutdown deadline). */
  kill(): void {
    if (this.done) return;
    this.cancelled = true;
    this.supervisor.send({ kill: this.id });
    // Also directly: the deadline has passed, so do not depend on the supervisor answering.
    if (this.pid !== undefined) signalGroup(this.pid, "SIGKILL");
  }

  /** @internal One of the task's output connections, named by its header; `rest` is what followed the header. */
  attach(stream: Stream, socket: Socket, rest: Buffer): void {
    if (this.streams[stream]) {
      socket.destroy();
      return;
    }
    this.streams[stream] = socket;
    if (rest.length > 0) this.handlers.onOutput(stream, rest);
    socket.on("data", (d: Buffer) => this.handlers.onOutput(stream, d));
    socket.once("close", () => this.markClosed[stream]());
  }

  /** @internal A report from the supervisor about this task. */
  onReport(report: SupervisorReport): void {
    if (this.done) return;
    if ("pid" in report) {
      this.pid = report.pid;
      this.handlers.onSpawn(report.pid);
    } else if ("exit" in report) {
      void this.end({ exitCode: report.exit ?? 128 + signalNumber(report.signal), signal: report.signal ?? "" }, true);
    } else if ("error" in report) {
      void this.end({ exitCode: 127, signal: "", spawnError: spawnError(report) }, false);
    }
  }

  /** @internal The supervisor died before reporting this task's end: the group is ours to kill. */
  supervisorDied(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.done) return;
    if (this.pid !== undefined) signalGroup(this.pid, "SIGKILL");
    void this.end({ exitCode: code ?? 128 + signalNumber(signal), signal: signal ?? "" }, true);
  }

  /** @internal The supervisor could not be started: neither could the task. */
  supervisorFailed(err: Error): void {
    if (this.done) return;
    void this.end({ exitCode: 127, signal: "", spawnError: err }, false);
  }

  private async end(result: Omit<ExecExit, "cancelled">, drain: boolean): Promise<void> {
    this.done = true;
    this.supervisor.remove(this.id);
    // The output is complete once the task's connections are closed (both were made before it started).
    if (drain) await waitAtMost(Promise.all([this.streamClosed.stdout, this.streamClosed.stderr]), PIPE_DRAIN_MS);
    tasksById.delete(this.id);
    this.streams.stdout?.destroy();
    this.streams.stderr?.destroy();
    this.resolveExit({ ...result, cancelled: this.cancelled });
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
