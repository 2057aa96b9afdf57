/**
 * One task from start to final report: prepares its environment and working dir, runs it (executor), ships its
 * output (log shipper), reports starting → running → final state and usage (reporter), and keeps its on-disk
 * record current (task records). Ordering matters and is kept by the per-task outbox lane: the log tail and the
 * final usage report are queued before the final status, so a scheduler that sees the final status already has
 * everything else.
 */
import { mkdirSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { requiredDriver, type TaskAssignment, type TaskState, type TaskStatusReport } from "@capa/domain";
import type { Logger } from "pino";
import { type Drivers, processDriver } from "./drivers/index.js";
import { type ExecExit, TaskProcess } from "./executor.js";
import { LogShipper } from "./log-shipper.js";
import type { RunningTaskView } from "./reconciler.js";
import { type Reporter, usageReport } from "./reporter.js";
import type { ReplicaProber } from "./service-replica.js";
import { processStartTicks, type TaskRecord, type TaskRecords } from "./task-records.js";

export interface TaskRunnerDeps {
  agentId: string;
  bootId: string;
  workDir: string;
  inheritEnv: readonly string[];
  usageIntervalMs: number;
  reporter: Reporter;
  records: TaskRecords;
  logger: Logger;
  baseEnv?: NodeJS.ProcessEnv;
  /** The agent's drivers; absent = every task runs as a host process. */
  drivers?: Drivers;
  /** A service replica's port and readiness prober (service-replica.ts); undefined for other tasks. */
  prober?: ReplicaProber;
}

/** Used when the template says 0. */
export const DEFAULT_KILL_GRACE_SECONDS = 10;

/**
 * The task's whole environment. The agent's own variables are passed through only by name (its NATS credentials
 * must not leak to tenant code), then the template's, then capa's, which the template cannot override: a task must
 * not widen its own CUDA_VISIBLE_DEVICES. CUDA_DEVICE_ORDER=PCI_BUS_ID makes CUDA number GPUs as nvidia-smi does;
 * its default (fastest first) would make index 1 mean a different physical GPU on mixed machines.
 */
export function taskEnv(
  a: TaskAssignment,
  inherit: readonly string[],
  base: NodeJS.ProcessEnv = process.env,
  checkpointFile?: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of inherit) {
    const value = base[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, a.template.env);
  env.CUDA_VISIBLE_DEVICES = a.gpuIndices.join(",");
  env.CUDA_DEVICE_ORDER = "PCI_BUS_ID";
  env.CAPA_TASK_ID = a.taskId;
  env.CAPA_JOB_ID = a.jobId;
  env.CAPA_REPLICA = String(a.replica);
  env.CAPA_EPOCH = String(a.epoch);
  // A training gang's worker: torchrun's env (torch.distributed's env:// init reads exactly these names), so a
  // script launched directly or under `torchrun --standalone`-style wrappers joins this generation's rendezvous.
  const r = a.rendezvous;
  if (r) {
    env.MASTER_ADDR = r.masterAddr;
    env.MASTER_PORT = String(r.masterPort);
    env.WORLD_SIZE = String(r.worldSize);
    env.RANK = String(r.rank);
    env.LOCAL_RANK = String(r.localRank);
    env.LOCAL_WORLD_SIZE = String(r.localWorldSize);
    env.GROUP_RANK = String(r.rank);
    env.CAPA_GENERATION = String(r.generation);
  }
  if (checkpointFile !== undefined) env.CAPA_CHECKPOINT_FILE = checkpointFile;
  return env;
}

/**
 * The checkpoint signal file, `<workDir>/tasks/<taskId>/.capa-checkpoint` (the task's default working dir, which
 * the agent creates): a task touches or writes it after each checkpoint; the agent reports its mtime as the
 * task's last checkpoint, which preemption uses to pick the victims that lose the least work.
 */
export function checkpointFile(a: TaskAssignment, workDir: string): string {
  return join(workDir, "tasks", a.taskId, ".capa-checkpoint");
}

/** The file's mtime in whole ms, 0 when it does not exist (or cannot be read). */
export function checkpointMtimeMs(file: string): number {
  try {
    return Math.floor(statSync(file).mtimeMs);
  } catch {
    return 0;
  }
}

/** Template dir if absolute; relative ones and the default live under `<workDir>/tasks/<taskId>`. */
export function taskWorkingDir(a: TaskAssignment, workDir: string): string {
  const taskDir = join(workDir, "tasks", a.taskId);
  if (!a.template.workingDir) return taskDir;
  return isAbsolute(a.template.workingDir) ? a.template.workingDir : resolve(taskDir, a.template.workingDir);
}

export class RunningTask {
  stopping = false;
  startedAtMs = 0;
  /** Resolves with the final report once it is queued (after the log tail and the final usage report). */
  readonly done: Promise<TaskStatusReport>;
  private stopReason = "";
  private stopState: TaskState = "cancelled";
  private proc: TaskProcess | undefined;
  private usageSeq = 0;
  private usageTimer: NodeJS.Timeout | undefined;
  private readonly checkpointPath: string;
  /** Checkpoint file mtime before the task started (an earlier run's): only later ones count. */
  private checkpointBaseline = 0;
  private lastCheckpointMs = 0;
  private readonly shipper: LogShipper;

  constructor(
    readonly assignment: TaskAssignment,
    private readonly deps: TaskRunnerDeps,
  ) {
    const a = assignment;
    this.checkpointPath = checkpointFile(a, deps.workDir);
    this.shipper = new LogShipper({
      taskId: a.taskId,
      jobId: a.jobId,
      publish: (chunk) => deps.reporter.log(a.epoch, chunk),
    });
    this.done = this.run();
  }

  view(): RunningTaskView {
    const a = this.assignment;
    return { taskId: a.taskId, epoch: a.epoch, gpuIndices: a.gpuIndices, stopping: this.stopping };
  }

  /** SIGTERM now, SIGKILL after the template's grace; the final state is `state` (cancelled, or preempted). */
  stop(reason: string, state: TaskState = "cancelled"): void {
    if (this.stopping) return;
    this.stopping = true;
    this.stopReason = reason;
    this.stopState = state;
    this.proc?.cancel();
  }

  /** SIGKILL without grace (shutdown deadline passed). */
  kill(): void {
    this.proc?.kill();
  }

  private async run(): Promise<TaskStatusReport> {
    const { deps } = this;
    const a = this.assignment;
    const log = deps.logger.child({ taskId: a.taskId, epoch: a.epoch });
    deps.reporter.status(a, "starting");
    this.saveRecord({});
    let exit: ExecExit;
    // The process driver unless the task needs another (an image: the container driver).
    const driver = deps.drivers ? deps.drivers.for(a) : processDriver;
    try {
      if (!driver) throw new Error(`this agent has no ${requiredDriver(a.template)} driver (no container runtime)`);
      const cwd = taskWorkingDir(a, deps.workDir);
      mkdirSync(cwd, { recursive: true });
      mkdirSync(dirname(this.checkpointPath), { recursive: true });
      this.checkpointBaseline = checkpointMtimeMs(this.checkpointPath);
      const grace = a.template.killGraceSeconds > 0 ? a.template.killGraceSeconds : DEFAULT_KILL_GRACE_SECONDS;
      const env = taskEnv(a, deps.inheritEnv, deps.baseEnv, this.checkpointPath);
      if (deps.prober) env.PORT = String(await deps.prober.assignPort());
      const run = driver.run(a, env, cwd, join(deps.workDir, "tasks", a.taskId));
      this.proc = TaskProcess.start(
        {
          command: run.command,
          env: run.env,
          cwd,
          killGraceMs: grace * 1000,
          supervisorDir: join(deps.workDir, "bin"),
        },
        {
          onSpawn: (pid) => this.onSpawn(pid),
          onOutput: (stream, data) => {
            deps.prober?.observeOutput(stream, data);
            this.shipper.write(stream, data);
          },
        },
      );
      // A stop that arrived while the task was being prepared.
      if (this.stopping) this.proc.cancel();
      exit = await this.proc.exited;
    } catch (err) {
      exit = { exitCode: 127, signal: "", cancelled: false, spawnError: err as Error };
    }
    if (this.usageTimer) clearInterval(this.usageTimer);
    deps.prober?.stop();
    // A container outlives a SIGKILLed CLI: remove it before the GPUs are reported free.
    await driver?.cleanup(a);
    return this.finish(exit, log);
  }

  private onSpawn(pid: number): void {
    const { deps } = this;
    const a = this.assignment;
    this.startedAtMs = Date.now();
    const supervisorPid = this.proc?.supervisorPid;
    this.saveRecord({
      pid,
      pidStartTicks: processStartTicks(pid),
      supervisorPid,
      supervisorStartTicks: supervisorPid === undefined ? undefined : processStartTicks(supervisorPid),
      startedAtMs: this.startedAtMs,
    });
    deps.reporter.status(a, "running", { startedAtMs: this.startedAtMs });
    deps.prober?.start();
    this.usageTimer = setInterval(() => this.reportUsage(false), deps.usageIntervalMs);
  }

  /** A full disk must not take the task down with it: the record only matters if the agent restarts. */
  private saveRecord(extra: Partial<TaskRecord>): void {
    const a = this.assignment;
    try {
      this.deps.records.save({
        taskId: a.taskId,
        jobId: a.jobId,
        epoch: a.epoch,
        bootId: this.deps.bootId,
        gpuIndices: [...a.gpuIndices],
        ...extra,
      });
    } catch (err) {
      this.deps.logger.error({ err, taskId: a.taskId }, "cannot save task record");
    }
  }

  /**
   * Runs on the usage cadence (no timer of its own): usage report, with the last checkpoint; a new checkpoint is
   * also re-reported as a "running" status, which the scheduler keeps on the task for preemption.
   */
  private reportUsage(final: boolean): void {
    const a = this.assignment;
    const checkpointed = this.pollCheckpoint();
    const ref = {
      ...a,
      agentId: this.deps.agentId,
      gpus: a.gpuIndices.length,
      startedAtMs: this.startedAtMs,
      lastCheckpointMs: this.lastCheckpointMs,
    };
    this.deps.reporter.usage(usageReport(ref, Date.now(), ++this.usageSeq, final));
    if (checkpointed && !final && !this.stopping) {
      this.deps.reporter.status(a, "running", {
        startedAtMs: this.startedAtMs,
        lastCheckpointMs: this.lastCheckpointMs,
      });
    }
  }

  /** Whether the checkpoint file changed since the last poll (and after the task started). */
  private pollCheckpoint(): boolean {
    const mtime = checkpointMtimeMs(this.checkpointPath);
    if (mtime === 0 || mtime <= this.checkpointBaseline || mtime <= this.lastCheckpointMs) return false;
    this.lastCheckpointMs = mtime;
    return true;
  }

  private finish(exit: ExecExit, log: Logger): TaskStatusReport {
    const { deps } = this;
    const a = this.assignment;
    const finishedAtMs = Date.now();
    if (exit.spawnError) {
      this.shipper.write(
        "system",
        Buffer.from(`[capa] cannot start ${a.template.command[0]}: ${exit.spawnError.message}\n`),
      );
    }
    this.shipper.close();
    if (this.startedAtMs > 0) this.reportUsage(true);
    let state: TaskState;
    let message: string;
    if (exit.spawnError) {
      state = "failed";
      message = `cannot start ${a.template.command[0]}: ${exit.spawnError.message}`;
    } else if (exit.cancelled) {
      state = this.stopState;
      message = this.stopReason;
    } else if (exit.exitCode === 0 && !exit.signal) {
      state = "succeeded";
      message = "";
    } else {
      state = "failed";
      message = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
    }
    const report = deps.reporter.status(a, state, {
      exitCode: exit.exitCode,
      signal: exit.signal,
      startedAtMs: this.startedAtMs,
      finishedAtMs,
      message,
      lastCheckpointMs: this.lastCheckpointMs,
    });
    this.saveRecord({ startedAtMs: this.startedAtMs, final: report });
    log.info({ state, exitCode: exit.exitCode, signal: exit.signal, logChunks: this.shipper.chunks }, "task finished");
    return report;
  }
}
