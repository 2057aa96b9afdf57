/**
 * Writes a fake `nvidia-smi` script into a temp dir that prints recorded query output, so the agent's GPU
 * discovery runs its real execFile path in tests. Put the returned `dir` first on PATH.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface FakeNvidiaSmi {
  dir: string;
  path: string;
  /** Deletes the temp dir (call it in the test's cleanup). */
  remove(): void;
}

export function writeFakeNvidiaSmi(
  output: string,
  options: { exitCode?: number; sleepSeconds?: number } = {},
): FakeNvidiaSmi {
  const dir = mkdtempSync(join(tmpdir(), "capa-fake-smi-"));
  const path = join(dir, "nvidia-smi");
  const dataPath = join(dir, "output.csv");
  writeFileSync(dataPath, output);
  writeFileSync(
    path,
    [
      "#!/bin/sh",
      options.sleepSeconds ? `sleep ${options.sleepSeconds}` : "",
      `cat ${JSON.stringify(dataPath)}`,
      `exit ${options.exitCode ?? 0}`,
      "",
    ].join("\n"),
  );
  chmodSync(path, 0o755);
  return { dir, path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
