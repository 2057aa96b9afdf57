/** How an agent runs a task: the seam between the task runner and the process or container driver. */
import type { TaskAssignment } from "@capa/domain";

/** What the supervisor starts for a task: an argv and its complete environment. */
export interface DriverRun {
  command: string[];
  env: Record<string, string>;
}

/** A host path the task needs beyond its own dir: a staged data input, or a checkpoint dir outside the task dir. */
export interface DriverMount {
  hostPath: string;
  /** Path inside a container (the process driver ignores it: processes use the host path). */
  containerPath: string;
  readOnly: boolean;
  /** The env variable that names the path: set to `containerPath` inside a container. */
  env?: string;
}

export interface TaskDriver {
  readonly name: string;
  /**
   * The argv and environment that run `a` with `env` (the task's environment, see taskEnv) in `cwd`; `taskDir` is
   * `<workDir>/tasks/<taskId>`, which holds the checkpoint file. Pure.
   */
  run(a: TaskAssignment, env: Record<string, string>, cwd: string, taskDir: string, mounts?: DriverMount[]): DriverRun;
  /** The image's digest (provenance on the job record); "" when unknown. Never throws. */
  imageDigest?(a: TaskAssignment): Promise<string>;
  /** After the task ended, however it ended: release what the driver started. Never throws. */
  cleanup(a: TaskAssignment): Promise<void>;
}
