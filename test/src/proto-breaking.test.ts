// `npm run proto:breaking` picks its base from what the clone has and says which: a CI clone that checked out one
// branch (no local main) compares against origin/main, an export without git history passes with "skipped", and
// a real break against origin/main still fails. Real git repositories in a temporary folder, real buf.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../..");
const work = mkdtempSync(join(tmpdir(), "capa-proto-breaking-"));

const sh = (cwd: string, ...args: string[]) =>
  execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@t",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@t",
    },
  });

/** What `npm run proto:breaking` would print and exit with in `dir`. */
function breaking(dir: string) {
  const env = { ...process.env };
  delete env.CAPA_PROTO_BASE;
  const r = spawnSync(process.execPath, [join(dir, "scripts/proto-breaking.mjs")], { cwd: dir, encoding: "utf8", env });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A tree with the script, the protos, buf.yaml, and node_modules (for buf) linked from this checkout. */
function tree(dir: string): string {
  for (const part of ["proto", "buf.yaml", "scripts/proto-breaking.mjs"]) {
    cpSync(join(repoRoot, part), join(dir, part), { recursive: true });
  }
  symlinkSync(join(repoRoot, "node_modules"), join(dir, "node_modules"));
  writeFileSync(join(dir, ".gitignore"), "node_modules\n");
  return dir;
}

describe("proto:breaking base selection", () => {
  const upstream = join(work, "upstream");
  const clone = join(work, "clone");

  beforeAll(() => {
    tree(upstream);
    sh(upstream, "init", "-q", "-b", "main");
    sh(upstream, "add", "-A");
    sh(upstream, "commit", "-q", "-m", "protos");
    sh(work, "clone", "-q", upstream, clone);
    // What a CI checkout of a pull request looks like: another branch, no local main, origin/main fetched.
    sh(clone, "checkout", "-q", "-b", "feature");
    sh(clone, "branch", "-q", "-D", "main");
    symlinkSync(join(repoRoot, "node_modules"), join(clone, "node_modules"));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("falls back to origin/main when there is no local main, and names it", () => {
    const commit = sh(clone, "rev-parse", "origin/main").trim().slice(0, 12);
    const r = breaking(clone);
    expect(r.out).toContain(`no breaking change against origin/main (origin/main (no local main), commit ${commit})`);
    expect(r.code).toBe(0);
  }, 120_000);

  it("still fails a breaking change against origin/main", () => {
    const file = join(clone, "proto/capa/v1/jobs.proto");
    const before = readFileSync(file, "utf8");
    // Renumbering a field breaks every client already using it.
    const after = before.replace(/(\bstring job_id = )(\d+);/, (_m, head: string) => `${head}999;`);
    expect(after).not.toBe(before);
    writeFileSync(file, after);
    try {
      const r = breaking(clone);
      expect(r.out).toMatch(/breaking change against origin\/main/);
      expect(r.code).toBe(1);
    } finally {
      writeFileSync(file, before);
    }
  }, 120_000);

  it("passes and says it skipped when the clone has nothing to compare against", () => {
    const bare = tree(join(work, "export"));
    const r = breaking(bare);
    expect(r.out).toMatch(/^proto:breaking: skipped: no tag, no main, no origin\/main/);
    expect(r.code).toBe(0);
  }, 60_000);
});
