/**
 * One task from start to final report: prepares its environment and working dir, runs it (executor), ships its
 * output (log shipper), reports starting → running → final state and usage (reporter), and keeps its on-disk
 * record current (task records). Ordering matters and is kept by the per-task outbox lane: the log tail and the
 * final usage report are queued before the final status, so a scheduler that sees the final status already has
 * everything else.
 */
import { mkdirSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import {
  type Checkpoint,
  requiredDriver,
  type TaskAssignment,
  type TaskState,
  type TaskStatusReport,
} from "@capa/domain";
import type { Logger } from "pino";
import {
  checkpointDirOf,
  copyLocalCheckpoint,
  type FoundCheckpoint,
  freshResumeDir,
  newestCheckpoint,
} from "./checkpoints/index.js";
import type { StoredCopy } from "./checkpoints/transfer.js";
import { type DriverMount, type Drivers, processDriver } from "./drivers/index.js";
import { type ExecExit, TaskProcess } from "./executor.js";
import { LogShipper } from "./log-shipper.js";
import type { RunningTaskView } from "./reconciler.js";
import { type Reporter, type StatusDetails, usageReport } from "./reporter.js";
import type { ReplicaProber } from "./service-replica.js";
import { defaultStagers, type StagedData, type StagerRegistry, StagingError, stageData } from "./staging/index.js";
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
  /** Stagers for `data:` inputs by URI scheme; default: file:// and host paths. */
  stagers?: StagerRegistry;
  /** How often `$CAPA_CHECKPOINT_DIR` is scanned for a new complete checkpoint; default 1 s. */
  checkpointPollMs?: number;
  /**
   * Fetches a checkpoint another agent wrote (through the scheduler's checkpoint store) into `intoDir`; resolves
   * with the local path. Absent = this agent cannot fetch, so such a task starts fresh (and says why).
   */
  fetchCheckpoint?: (a: TaskAssignment, checkpoint: Checkpoint, intoDir: string) => Promise<string>;
  /**
   * Copies a new complete checkpoint into the scheduler's checkpoint store before it is reported, so a reported
   * `copy: "stored"` is one any agent can fetch. Absent = checkpoints stay on this agent (`copy: "agent"`).
   */
  storeCheckpoint?: (a: TaskAssignment, found: FoundCheckpoint) => Promise<StoredCopy>;
}

export const DEFAULT_CHECKPOINT_POLL_MS = 1000;

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
  /** `$CAPA_CHECKPOINT_DIR` (checkpoint policy only) and the newest complete checkpoint seen in it. */
  private checkpointDir: string | undefined;
  private newest: FoundCheckpoint | undefined;
  private checkpointTimer: NodeJS.Timeout | undefined;
  /** The newest checkpoint as last reported (with where its copy is), and the copy in flight, if any. */
  private reported: Checkpoint | undefined;
  private storing: Promise<void> | undefined;
  /** What this run resumed from, or why it started fresh; sent with every report of the run. */
  private resumedFrom: Checkpoint | undefined;
  private resumeNote = "";
  /** The container image's digest (provenance), when the driver could tell. */
  private imageDigest = "";
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
      // The signal file's dir is the task's dir, which is the working dir unless the template names another.
      if (dirname(this.checkpointPath) !== cwd) mkdirSync(dirname(this.checkpointPath), { recursive: true });
      this.checkpointBaseline = checkpointMtimeMs(this.checkpointPath);
      const grace = a.template.killGraceSeconds > 0 ? a.template.killGraceSeconds : DEFAULT_KILL_GRACE_SECONDS;
      const env = taskEnv(a, deps.inheritEnv, deps.baseEnv, this.checkpointPath);
      const taskDir = join(deps.workDir, "tasks", a.taskId);
      // Only awaited when there is work: a plain task starts without yielding, so a stop cannot slip in between.
      const mounts = a.data?.length ? await this.stage(env, taskDir) : [];
      if (a.checkpoint) await this.prepareCheckpoints(env, log);
      if (this.checkpointDir && !this.checkpointDir.startsWith(`${taskDir}/`))
        mounts.push({ hostPath: this.checkpointDir, containerPath: this.checkpointDir, readOnly: false });
      if (deps.prober) env.PORT = String(await deps.prober.assignPort());
      if (driver.imageDigest && a.template.image) this.imageDigest = await driver.imageDigest(a);
      const run = driver.run(a, env, cwd, taskDir, mounts);
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
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    deps.prober?.stop();
    // A container outlives a SIGKILLed CLI: remove it before the GPUs are reported free.
    await driver?.cleanup(a);
    // A checkpoint written on the way out (e.g. on SIGTERM before a preemption) is copied and reported too.
    await this.storing;
    const lastFound = this.startedAtMs > 0 ? this.scanCheckpoint() : undefined;
    if (lastFound) await this.storeAndNote(lastFound);
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
      supervisorStartTicks: this.proc?.supervisorStartTicks,
      startedAtMs: this.startedAtMs,
    });
    deps.reporter.status(a, "running", { startedAtMs: this.startedAtMs, ...this.checkpointDetails() });
    deps.prober?.start();
    this.usageTimer = setInterval(() => this.reportUsage(false), deps.usageIntervalMs);
    if (this.checkpointDir) {
      this.checkpointTimer = setInterval(
        () => this.pollCheckpointDir(),
        deps.checkpointPollMs ?? DEFAULT_CHECKPOINT_POLL_MS,
      );
    }
  }

  /**
   * With a checkpoint policy: creates `$CAPA_CHECKPOINT_DIR`, notes the checkpoint already there (an earlier
   * run's, reported then), and sets `$CAPA_RESUME_FROM` to a local copy of the checkpoint the assignment names.
   * A checkpoint that cannot be had locally is not fatal: the task starts fresh and its log says why.
   */
  private async prepareCheckpoints(env: Record<string, string>, log: Logger): Promise<void> {
    const a = this.assignment;
    const { deps } = this;
    const dir = checkpointDirOf(a, deps.workDir);
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    this.checkpointDir = dir;
    this.newest = newestCheckpoint(dir);
    env.CAPA_CHECKPOINT_DIR = dir;
    const every = a.checkpoint?.everySeconds ?? 0;
    if (every > 0) env.CAPA_CHECKPOINT_EVERY_SECONDS = String(every);
    const from = a.resumeFrom;
    if (!from) {
      if (a.resumeNote) {
        this.resumeNote = a.resumeNote;
        this.system(`[capa] starting fresh: ${a.resumeNote}\n`);
      }
      return;
    }
    const origin = `checkpoint ${from.name} of attempt ${from.attempt || 1} (task ${from.taskId} epoch ${from.epoch} on ${from.agentId})`;
    let path: string | undefined;
    let why = "";
    try {
      if (from.agentId === deps.agentId) {
        try {
          // Another rank's (a gang resumes from one checkpoint) is read from that task's dir.
          path = copyLocalCheckpoint(a, deps.workDir, from.name, from.taskId || a.taskId);
          if (!path) why = "it is no longer in the checkpoint dir";
        } catch (err) {
          // Rotated away while being copied: the stored copy, if there is one, still serves.
          why = `it could not be copied out of the checkpoint dir (${(err as Error).message})`;
        }
      }
      if (!path && from.copy === "stored" && deps.fetchCheckpoint) {
        path = await deps.fetchCheckpoint(a, from, freshResumeDir(a, deps.workDir));
      } else if (!path && !why) {
        why =
          from.copy === "stored"
            ? "this agent cannot fetch from the checkpoint store"
            : `it is only on agent ${from.agentId} (${from.copyNote || `copy: ${from.copy}`})`;
      }
    } catch (err) {
      why = (err as Error).message;
      log.warn({ err, checkpoint: from.name }, "cannot prepare the checkpoint to resume from");
    }
    if (path) {
      env.CAPA_RESUME_FROM = path;
      this.resumedFrom = from;
      this.system(`[capa] resuming from ${origin}: CAPA_RESUME_FROM=${path}\n`);
    } else {
      this.resumeNote = `cannot resume from ${origin}: ${why}`.slice(0, 512);
      this.system(`[capa] starting fresh: ${this.resumeNote}\n`);
    }
  }

  /** Stages `data:` inputs (their host paths in `$CAPA_DATA_<NAME>`); a failure fails the task, naming the input. */
  private async stage(env: Record<string, string>, taskDir: string): Promise<DriverMount[]> {
    const a = this.assignment;
    if (!a.data?.length) return [];
    let staged: StagedData[];
    try {
      staged = await stageData(a, taskDir, this.deps.stagers ?? defaultStagers());
    } catch (err) {
      const name = err instanceof StagingError ? ` ${err.mount}` : "";
      throw new Error(`cannot stage data${name}: ${(err as Error).message}`, { cause: err });
    }
    for (const d of staged) {
      env[d.env] = d.hostPath;
      this.system(`[capa] data ${d.name}: ${d.hostPath}\n`);
    }
    return staged.map((d) => ({ hostPath: d.hostPath, containerPath: d.containerPath, readOnly: true, env: d.env }));
  }

  private system(line: string): void {
    this.shipper.write("system", Buffer.from(line));
  }

  /** What every report of this run says about checkpoints: the newest one and what the run resumed from. */
  private checkpointDetails(): StatusDetails {
    return {
      lastCheckpointMs: this.lastCheckpointMs,
      ...(this.reported && { checkpoint: this.reported }),
      ...(this.resumedFrom && { resumedFrom: this.resumedFrom }),
      ...(this.resumeNote && { resumeNote: this.resumeNote }),
      ...(this.imageDigest && { imageDigest: this.imageDigest }),
    };
  }

  /**
   * A new complete checkpoint: copied into the store (when this agent can), then reported as a "running" status
   * naming it and where its copy is. One copy at a time; a checkpoint that appears meanwhile is taken next time.
   */
  private pollCheckpointDir(): void {
    if (this.storing || this.stopping) return;
    const found = this.scanCheckpoint();
    if (!found) return;
    this.storing = this.storeAndNote(found)
      .then(() => {
        if (this.stopping) return;
        this.deps.reporter.status(this.assignment, "running", {
          startedAtMs: this.startedAtMs,
          ...this.checkpointDetails(),
        });
      })
      .finally(() => {
        this.storing = undefined;
      });
  }

  private async storeAndNote(found: FoundCheckpoint): Promise<void> {
    const stored = this.deps.storeCheckpoint
      ? await this.deps.storeCheckpoint(this.assignment, found)
      : { copy: "agent" as const, copyNote: "", object: "" };
    this.reported = { ...this.checkpointReport(found), ...stored };
  }

  /** The newest complete checkpoint when it is new since the last scan; it also dates the task's last checkpoint. */
  private scanCheckpoint(): FoundCheckpoint | undefined {
    if (!this.checkpointDir) return undefined;
    const found = newestCheckpoint(this.checkpointDir);
    if (!found) return undefined;
    const prev = this.newest;
    if (prev && prev.name === found.name && prev.createdAtMs === found.createdAtMs) return undefined;
    this.newest = found;
    // Strictly later than the last one reported, so each report has its own msgID (reporter.statusMsgId).
    this.lastCheckpointMs = Math.max(found.createdAtMs, this.lastCheckpointMs + 1);
    return found;
  }

  private checkpointReport(found: FoundCheckpoint): Checkpoint {
    const a = this.assignment;
    return {
      name: found.name,
      sizeBytes: found.sizeBytes,
      createdAtMs: found.createdAtMs,
      taskId: a.taskId,
      epoch: a.epoch,
      agentId: this.deps.agentId,
      attempt: 0,
      copy: "agent",
      copyNote: "",
      object: "",
    };
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
      ...this.checkpointDetails(),
    });
    this.saveRecord({ startedAtMs: this.startedAtMs, final: report });
    log.info({ state, exitCode: exit.exitCode, signal: exit.signal, logChunks: this.shipper.chunks }, "task finished");
    return report;
  }
}
