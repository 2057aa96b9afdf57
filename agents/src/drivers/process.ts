import type { DriverRun, TaskDriver } from "./types.js";

/** The task's argv as a host process (the supervisor owns its process group). */
export const processDriver: TaskDriver = {
  name: "process",
  run: (a, env): DriverRun => ({ command: [...a.template.command], env }),
  cleanup: async () => undefined,
};
