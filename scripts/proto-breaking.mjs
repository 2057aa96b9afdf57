#!/usr/bin/env node
// `buf breaking` for the capa.v1 protos: the working tree against a base, so a change that would break
// clients already using the API (a field renumbered, retyped or deleted without `reserved`, a JSON name
// changed) fails `npm test`. The base: $CAPA_PROTO_BASE (any git ref), else the last tag, else `main` (land.sh
// runs `npm test` on a branch rebased onto main: its protos are checked against main's).
// The base's protos come from `git archive` (works in worktrees and shallow clones that have the ref).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const git = (...args) =>
  execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
const tryGit = (...args) => {
  try {
    return git(...args);
  } catch {
    return "";
  }
};

function base() {
  if (process.env.CAPA_PROTO_BASE) return process.env.CAPA_PROTO_BASE;
  const tag = tryGit("describe", "--tags", "--abbrev=0");
  if (tag) return tag;
  return tryGit("rev-parse", "--verify", "--quiet", "main^{commit}") ? "main" : "";
}

const ref = base();
if (!ref) {
  console.log("proto:breaking: no tag and no main branch: nothing to compare against");
  process.exit(0);
}
if (!tryGit("ls-tree", "--name-only", ref, "proto/capa")) {
  console.log(`proto:breaking: ${ref} has no proto/ yet: nothing to compare against`);
  process.exit(0);
}
const dir = mkdtempSync(join(tmpdir(), "capa-proto-base-"));
try {
  execFileSync("sh", ["-c", `git archive "${ref}" proto buf.yaml | tar -x -C "${dir}"`], {
    cwd: root,
    stdio: "inherit",
  });
  if (!existsSync(join(dir, "buf.yaml"))) throw new Error(`${ref} has no buf.yaml`);
  execFileSync(join(root, "node_modules/.bin/buf"), ["breaking", "--against", dir], { cwd: root, stdio: "inherit" });
  console.log(`proto:breaking: no breaking change against ${ref}`);
} catch (err) {
  console.error(`proto:breaking: breaking change against ${ref} (or the check failed): ${err.message}`);
  process.exit(1);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
