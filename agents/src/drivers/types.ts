/** How an agent runs a task: the seam between the task runner and the process or container driver. */
import type { TaskAssignment } from "@capa/domain";

/** What the supervisor starts for a task: an argv and its complete environment. */
export interface DriverRun {
  command: string[];
  env: Record<string, string>;
}

export interface TaskDriver {
  readonly name: string;
  /**
   * The argv and environment that run `a` with `env` (the task's environment, see taskEnv) in `cwd`; `taskDir` is
   * `<workDir>/tasks/<taskId>`, which holds the checkpoint file. Pure.
   */
  run(a: TaskAssignment, env: Record<string, string>, cwd: string, taskDir: string): DriverRun;
  /** After the task ended, however it ended: release what the driver started. Never throws. */
  cleanup(a: TaskAssignment): Promise<void>;
}
