/**
 * The container driver: runs a task in an OCI container through a docker-compatible CLI (podman or docker). The
 * container CLI runs in the foreground under the agent's task supervisor, like any task, so SIGTERM → SIGKILL,
 * output, exit code and usage work as for the process driver:
 *
 * - `--init` puts a tiny init as PID 1, so SIGTERM (forwarded by the CLI's signal proxy) ends the task even when it
 *   installs no handler, as it would outside a container; the CLI exits with the task's code.
 * - SIGKILL after the grace can only kill the CLI, not the container it started, so `cleanup` removes the
 *   container (`rm -f`) once the CLI is gone, and `removeLeftovers` removes every container labelled with this
 *   agent at start (an agent that died left them behind).
 * - The environment reaches the container by name only (`--env NAME`: the CLI copies the value from its own
 *   environment), so values (secrets) never show in a process listing.
 * - GPUs the NVIDIA Container Toolkit way: `--device nvidia.com/gpu=<index>` (CDI) for real GPUs, or
 *   `NVIDIA_VISIBLE_DEVICES=<indices>` (`gpuMode: "env"`, and always for simulated GPUs, which have no CDI spec).
 *   Inside, the visible GPUs are numbered from 0, so CUDA_VISIBLE_DEVICES is `0..n-1`; CAPA_GPU_INDICES keeps the
 *   host's indices.
 * - The task's directory (`<workDir>/tasks/<taskId>`, which holds $CAPA_CHECKPOINT_FILE, the default
 *   $CAPA_CHECKPOINT_DIR and the resume copy) is mounted at the same path, and the working dir is the same as the
 *   process driver's, so paths mean the same inside and out. A checkpoint dir elsewhere is mounted at its own path;
 *   staged data (`data:`) is mounted read-only at its target and `$CAPA_DATA_<NAME>` names the inside path.
 */
import { execFile } from "node:child_process";
import type { TaskAssignment } from "@capa/domain";
import type { DriverMount, DriverRun, TaskDriver } from "./types.js";

export type GpuMode = "cdi" | "env";

export interface ContainerDriverOptions {
  /** The CLI: `podman` or `docker` (a path or a name on PATH). */
  runtime: string;
  agentId: string;
  gpuMode: GpuMode;
  /** Extra `--volume` mounts every container gets (host:container[:ro]). */
  extraArgs?: readonly string[];
  /** Environment for the CLI's own calls (rm, version): e.g. CONTAINERS_CONF. */
  runtimeEnv?: Record<string, string>;
}

/** Container names are one token derived from task and epoch, so a retry never collides with an old run. */
export function containerName(a: Pick<TaskAssignment, "taskId" | "epoch">): string {
  return `capa-${a.taskId}-${a.epoch}`.replace(/[^A-Za-z0-9_.-]/g, "_");
}

export const AGENT_LABEL = "capa.agent";

export class ContainerDriver implements TaskDriver {
  readonly name = "container";

  constructor(private readonly o: ContainerDriverOptions) {}

  /** The argv and environment of `<runtime> run ...` for the task. Pure: tested argument by argument. */
  run(
    a: TaskAssignment,
    env: Record<string, string>,
    cwd: string,
    taskDir: string,
    mounts: DriverMount[] = [],
  ): DriverRun {
    const image = a.template.image ?? "";
    if (!image) throw new Error("the container driver needs an image");
    const inner: Record<string, string> = { ...env };
    const gpus = a.gpuIndices;
    inner.CAPA_GPU_INDICES = gpus.join(",");
    inner.CUDA_VISIBLE_DEVICES = gpus.map((_, i) => String(i)).join(",");
    const args = [
      "run",
      "--rm",
      "--init",
      "--name",
      containerName(a),
      "--label",
      `${AGENT_LABEL}=${this.o.agentId}`,
      "--label",
      `capa.task=${a.taskId}`,
      "--volume",
      `${taskDir}:${taskDir}`,
      "--workdir",
      cwd,
    ];
    if (cwd !== taskDir && !cwd.startsWith(`${taskDir}/`)) args.push("--volume", `${cwd}:${cwd}`);
    // Staged data read-only at its target (a task must not change shared inputs); its env names the inside path.
    for (const m of mounts) {
      args.push("--volume", `${m.hostPath}:${m.containerPath}${m.readOnly ? ":ro" : ""}`);
      if (m.env) inner[m.env] = m.containerPath;
    }
    if (this.o.gpuMode === "cdi") {
      for (const index of gpus) args.push("--device", `nvidia.com/gpu=${index}`);
    } else {
      inner.NVIDIA_VISIBLE_DEVICES = gpus.length > 0 ? gpus.join(",") : "void";
    }
    // PATH and HOME are the image's own: the host's would point at directories the image does not have.
    delete inner.PATH;
    delete inner.HOME;
    for (const name of Object.keys(inner).sort()) args.push("--env", name);
    args.push(...(this.o.extraArgs ?? []), image, ...a.template.command);
    return { command: [this.o.runtime, ...args], env: { ...this.o.runtimeEnv, ...env, ...inner } };
  }

  /**
   * The image's repo digest when it has one (pulled images), else its image id (a locally built or imported image
   * has no registry digest); "" when the runtime cannot tell.
   */
  async imageDigest(a: TaskAssignment): Promise<string> {
    const image = a.template.image ?? "";
    if (!image) return "";
    const out = await this.exec(["image", "inspect", "--format", "{{.Digest}} {{.Id}}", image]).catch(() => "");
    const [digest, id] = out.trim().split(/\s+/);
    if (digest?.startsWith("sha256:")) return digest;
    return id ? (id.startsWith("sha256:") ? id : `sha256:${id}`) : "";
  }

  /** Removes the task's container if the CLI left it behind (it was SIGKILLed); never throws. */
  async cleanup(a: TaskAssignment): Promise<void> {
    await this.exec(["rm", "--force", "--time", "0", containerName(a)]).catch(() => undefined);
  }

  /** At agent start: no task runs yet, so every container labelled with this agent is a leftover. */
  async removeLeftovers(): Promise<void> {
    const out = await this.exec(["ps", "--all", "--quiet", "--filter", `label=${AGENT_LABEL}=${this.o.agentId}`]).catch(
      () => "",
    );
    const ids = out.split(/\s+/).filter(Boolean);
    if (ids.length > 0) await this.exec(["rm", "--force", "--time", "0", ...ids]).catch(() => undefined);
  }

  private exec(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        this.o.runtime,
        args,
        { env: { ...process.env, ...this.o.runtimeEnv }, timeout: 30_000 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      );
    });
  }
}

/** Whether `runtime` answers `version` (within 10 s): the agent advertises the container driver only then. */
export function runtimeAvailable(runtime: string, env: Record<string, string> = {}): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(runtime, ["version"], { env: { ...process.env, ...env }, timeout: 10_000 }, (err) => resolve(!err));
  });
}
