/**
 * A tiny local OCI image for container tests: images cannot be pulled here, so a static busybox (Debian's
 * busybox-static, installed by scripts/bootstrap.sh) becomes a rootfs that `podman import` turns into an image.
 * Also writes the containers.conf podman needs on these machines (no default ulimits; runc where crun cannot
 * handle the host's cgroup layout) and points CONTAINERS_CONF at it.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const TEST_IMAGE = "localhost/capa-busybox:test";
const APPLETS = [
  "sh",
  "echo",
  "cat",
  "sleep",
  "env",
  "ls",
  "touch",
  "mkdir",
  "printf",
  "date",
  "test",
  "[",
  "true",
  "false",
  "cp",
  "kill",
  "id",
];

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(cmd, args, { env, encoding: "utf8", timeout: 60_000 });
}

/** Whether a podman CLI answers here. */
export function podmanPresent(): boolean {
  return run("podman", ["version"]).status === 0;
}

function findBusybox(): string {
  for (const path of ["/bin/busybox", "/usr/bin/busybox"]) if (existsSync(path)) return path;
  throw new Error("podman is present but busybox is not: apt-get install busybox-static (scripts/bootstrap.sh)");
}

/**
 * Builds TEST_IMAGE under `dir` and returns the CONTAINERS_CONF path (also set in process.env, so agents started
 * in this process use it). Throws when podman cannot run a container at all.
 */
export function prepareTestImage(dir: string): string {
  const conf = join(dir, "containers.conf");
  const rootfs = join(dir, "rootfs");
  mkdirSync(join(rootfs, "bin"), { recursive: true });
  mkdirSync(join(rootfs, "tmp"), { recursive: true });
  copyFileSync(findBusybox(), join(rootfs, "bin", "busybox"));
  for (const applet of APPLETS) symlinkSync("busybox", join(rootfs, "bin", applet));
  const tar = join(dir, "rootfs.tar");
  const packed = run("tar", ["-C", rootfs, "-cf", tar, "."]);
  if (packed.status !== 0) throw new Error(`tar: ${packed.stderr}`);
  const attempts = [
    "[containers]\ndefault_ulimits = []\n",
    '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n',
  ];
  let lastError = "";
  for (const text of attempts) {
    writeFileSync(conf, text);
    const env = { ...process.env, CONTAINERS_CONF: conf };
    const imported = run("podman", ["import", "--change", "CMD=/bin/sh", tar, TEST_IMAGE], env);
    if (imported.status !== 0) throw new Error(`podman import: ${imported.stderr}`);
    const probe = run("podman", ["run", "--rm", "--init", TEST_IMAGE, "true"], env);
    if (probe.status === 0) {
      process.env.CONTAINERS_CONF = conf;
      return conf;
    }
    lastError = probe.stderr.trim();
  }
  throw new Error(`podman cannot run a container here: ${lastError}`);
}

/** Names of containers (any state) whose name starts with `prefix`. */
export function containersNamed(prefix: string): string[] {
  const out = run("podman", ["ps", "--all", "--format", "{{.Names}}"]);
  return out.stdout
    .split("\n")
    .map((s) => s.trim())
    .filter((n) => n.startsWith(prefix));
}
