/**
 * Data staging (`data:` mounts): before a task starts, the agent stages each input and hands its path to the task
 * as `$CAPA_DATA_<NAME>` (containers get it mounted read-only at `target`, default `/data/<name>`).
 *
 * One Stager per URI scheme in a registry: the seam for object stores. A new scheme (s3://, gs://) is one more
 * Stager registered here and one more entry in @capa/domain's STAGED_SCHEMES, which the scheduler checks at submit
 * (a scheme no agent stages is refused there with "no stager for scheme", not discovered on an agent). A unit test
 * keeps the two lists equal.
 */
import { statSync } from "node:fs";
import { isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";
import { type DataMount, dataEnvName, dataScheme, type TaskAssignment } from "@capa/domain";

/** Where a staged input is: on the host, and inside a container. */
export interface StagedData {
  name: string;
  env: string;
  hostPath: string;
  containerPath: string;
}

export interface Stager {
  readonly scheme: string;
  /** Makes `mount.source` available on this machine; resolves with its host path. `taskDir` is the task's dir. */
  stage(mount: DataMount, taskDir: string): Promise<string>;
}

/** A stage that failed: names the mount and why; the task fails with it rather than start without its data. */
export class StagingError extends Error {
  override name = "StagingError";
  constructor(
    readonly mount: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * `file://` URIs and host paths: staged in place (datasets are large; copying them per task would cost a disk per
 * run). The path must exist and be absolute; containers mount it read-only, so a task cannot change shared data.
 */
export const fileStager: Stager = {
  scheme: "file",
  async stage(mount) {
    let path: string;
    try {
      path = mount.source.startsWith("file:") ? fileURLToPath(mount.source) : mount.source;
    } catch (err) {
      throw new StagingError(mount.name, `${mount.source} is not a file URI`, { cause: err });
    }
    if (!isAbsolute(path)) throw new StagingError(mount.name, `${mount.source} is not an absolute path`);
    try {
      statSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new StagingError(mount.name, `${path}: ${code === "ENOENT" ? "no such file or directory" : code}`, {
        cause: err,
      });
    }
    return path;
  },
};

export class StagerRegistry {
  private readonly byScheme = new Map<string, Stager>();
  constructor(stagers: readonly Stager[]) {
    for (const s of stagers) this.byScheme.set(s.scheme, s);
  }
  schemes(): string[] {
    return [...this.byScheme.keys()].sort();
  }
  for(scheme: string): Stager | undefined {
    return this.byScheme.get(scheme);
  }
}

export const defaultStagers = (): StagerRegistry => new StagerRegistry([fileStager]);

/** Stages every mount of the assignment, in order; throws StagingError naming the first that fails. */
export async function stageData(a: TaskAssignment, taskDir: string, registry: StagerRegistry): Promise<StagedData[]> {
  const out: StagedData[] = [];
  for (const mount of a.data ?? []) {
    const scheme = dataScheme(mount.source);
    const stager = registry.for(scheme);
    if (!stager) throw new StagingError(mount.name, `no stager for scheme ${scheme}:// on this agent`);
    const hostPath = await stager.stage(mount, taskDir);
    out.push({
      name: mount.name,
      env: dataEnvName(mount.name),
      hostPath,
      containerPath: mount.target || `/data/${mount.name}`,
    });
  }
  return out;
}
