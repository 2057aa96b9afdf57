/**
 * The agent's task drivers: `process` always, `container` when a docker-compatible runtime answers. The agent
 * advertises their names; the placement engine's driver filter sends image tasks only to agents with `container`.
 */
import { requiredDriver, type TaskAssignment } from "@capa/domain";
import { ContainerDriver, type GpuMode, runtimeAvailable } from "./container.js";
import { processDriver } from "./process.js";
import type { TaskDriver } from "./types.js";

export { AGENT_LABEL, ContainerDriver, containerName, type GpuMode, runtimeAvailable } from "./container.js";
export { processDriver } from "./process.js";
export type { DriverMount, DriverRun, TaskDriver } from "./types.js";

/** Agent variables the container CLI itself needs (they never reach the task unless it is given them). */
export const RUNTIME_ENV = ["CONTAINERS_CONF", "CONTAINER_HOST", "DOCKER_HOST", "DOCKER_CONFIG", "XDG_RUNTIME_DIR"];

export interface DriverOptions {
  agentId: string;
  /** "" or "none" = no container driver; "auto" = podman, else docker, if one answers; else the CLI to use. */
  containerRuntime: string;
  gpuMode: GpuMode;
  env?: NodeJS.ProcessEnv;
}

export class Drivers {
  private constructor(
    private readonly byName: Map<string, TaskDriver>,
    readonly container: ContainerDriver | undefined,
  ) {}

  static async detect(o: DriverOptions): Promise<Drivers> {
    const env = o.env ?? process.env;
    const runtimeEnv: Record<string, string> = {};
    for (const name of RUNTIME_ENV) if (env[name] !== undefined) runtimeEnv[name] = env[name]!;
    const wanted = o.containerRuntime === "auto" ? ["podman", "docker"] : [o.containerRuntime].filter(Boolean);
    let container: ContainerDriver | undefined;
    for (const runtime of wanted) {
      if (runtime === "none") break;
      if (await runtimeAvailable(runtime, runtimeEnv)) {
        container = new ContainerDriver({ runtime, agentId: o.agentId, gpuMode: o.gpuMode, runtimeEnv });
        break;
      }
    }
    const byName = new Map<string, TaskDriver>([["process", processDriver]]);
    if (container) byName.set("container", container);
    return new Drivers(byName, container);
  }

  /** What the agent advertises. */
  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The driver for a task, or undefined when this agent has none for it (the task then fails, saying so). */
  for(a: TaskAssignment): TaskDriver | undefined {
    return this.byName.get(requiredDriver(a.template));
  }
}
