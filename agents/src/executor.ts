/**
 * Child-process lifecycle of one task. The command runs from its argv (no shell, unless the argv itself is
 * `sh -c ...`) in its own process group, so a cancel reaches everything the task started: SIGTERM to the group,
 * SIGKILL after the grace period. When the main process exits on its own, leftovers in the group are killed too:
 * a forgotten background process would otherwise keep GPUs busy after the agent has reported them free.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";

export interface ExecSpec {
  command: readonly string[];
  /** The complete environment: nothing is inherited implicitly. */
  env: Record<string, string>;
  cwd: string;
  /** Grace between SIGTERM and SIGKILL on cancel. */
  killGraceMs: number;
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

export class TaskProcess {
  readonly exited: Promise<ExecExit>;
  pid: number | undefined;
  private cancelled = false;
  private done = false;
  private killTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly spec: ExecSpec,
    handlers: ExecHandlers,
  ) {
    const [program, ...args] = spec.command;
    const child = spawn(program ?? "", args, {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.pid = child.pid;
    child.stdout.on("data", (d: Buffer) => handlers.onOutput("stdout", d));
    child.stderr.on("data", (d: Buffer) => handlers.onOutput("stderr", d));
    child.once("spawn", () => {
      if (child.pid !== undefined) handlers.onSpawn(child.pid);
    });
    const pipesClosed = Promise.all([
      new Promise((r) => child.stdout.once("close", r)),
      new Promise((r) => child.stderr.once("close", r)),
    ]);
    this.exited = new Promise<ExecExit>((resolve) => {
      child.once("error", (err) => {
        // 'error' without a pid = the program never started; with a pid it is a kill failure, and 'exit' follows.
        if (child.pid !== undefined) return;
        this.finish();
        resolve({ exitCode: 127, signal: "", cancelled: this.cancelled, spawnError: err });
      });
      child.once("exit", async (code, signal) => {
        if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
        this.finish();
        let timer: NodeJS.Timeout | undefined;
        const drainLimit = new Promise((r) => {
          timer = setTimeout(r, PIPE_DRAIN_MS);
        });
        await Promise.race([pipesClosed, drainLimit]);
        clearTimeout(timer);
        child.stdout.destroy();
        child.stderr.destroy();
        const signum = signal ? (constants.signals[signal] ?? 0) : 0;
        resolve({ exitCode: code ?? 128 + signum, signal: signal ?? "", cancelled: this.cancelled });
      });
    });
  }

  static start(spec: ExecSpec, handlers: ExecHandlers): TaskProcess {
    return new TaskProcess(spec, handlers);
  }

  get running(): boolean {
    return !this.done;
  }

  /** SIGTERM to the process group now, SIGKILL after the grace period. Idempotent. */
  cancel(): void {
    if (this.done || this.cancelled) return;
    this.cancelled = true;
    if (this.pid === undefined) return;
    signalGroup(this.pid, "SIGTERM");
    const pid = this.pid;
    this.killTimer = setTimeout(() => signalGroup(pid, "SIGKILL"), this.spec.killGraceMs);
  }

  /** SIGKILL to the group without waiting for the grace period (shutdown deadline). */
  kill(): void {
    if (this.done || this.pid === undefined) return;
    this.cancelled = true;
    signalGroup(this.pid, "SIGKILL");
  }

  private finish(): void {
    this.done = true;
    if (this.killTimer) clearTimeout(this.killTimer);
  }
}
