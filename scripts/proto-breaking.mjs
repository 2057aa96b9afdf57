#!/usr/bin/env node
// `buf breaking` for the capa.v1 protos: the working tree against a base, so a change that would break
// clients already using the API (a field renumbered, retyped or deleted without `reserved`, a JSON name
// changed) fails `npm test`. The base, first that exists: $CAPA_PROTO_BASE (any git ref), the last tag, the
// local `main`, `origin/main`, then the remote's default branch (`origin/HEAD`). land.sh runs `npm test` on a
// branch rebased onto main, so its protos are checked against main's; a CI clone that checked out one branch
// without a local main still has `origin/main`. With no base at all (a fresh clone of one commit, an export
// without .git) there is nothing to compare against: it says so and passes, since failing would only punish
// the clone's shape. It always prints what it compared against (ref and commit).
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
const commitOf = (ref) => tryGit("rev-parse", "--verify", "--quiet", `${ref}^{commit}`);

/** The first base that resolves to a commit, with why it was chosen. */
function base() {
  const env = process.env.CAPA_PROTO_BASE;
  if (env) {
    if (!commitOf(env)) {
      console.error(`proto:breaking: CAPA_PROTO_BASE=${env} is not a commit in this clone`);
      process.exit(1);
    }
    return { ref: env, why: "CAPA_PROTO_BASE" };
  }
  const tag = tryGit("describe", "--tags", "--abbrev=0");
  if (tag) return { ref: tag, why: "the last tag" };
  for (const [ref, why] of [
    ["main", "the local main branch"],
    ["origin/main", "origin/main (no local main)"],
    ["origin/HEAD", "the remote's default branch (no main)"],
  ]) {
    if (commitOf(ref)) return { ref, why };
  }
  return undefined;
}

const chosen = base();
if (!chosen) {
  console.log("proto:breaking: skipped: no tag, no main, no origin/main in this clone: nothing to compare against");
  process.exit(0);
}
const { ref, why } = chosen;
const against = `${ref} (${why}, commit ${commitOf(ref).slice(0, 12)})`;
if (!tryGit("ls-tree", "--name-only", ref, "proto/capa")) {
  console.log(`proto:breaking: skipped: ${against} has no proto/ yet: nothing to compare against`);
  process.exit(0);
}
/** Extracts the base's protos and runs buf: the exit status (0 also when the base's tree cannot be read). */
function check(dir) {
  try {
    execFileSync("sh", ["-c", `git archive "${ref}" proto buf.yaml | tar -x -C "${dir}"`], {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"],
    });
  } catch (err) {
    // The ref resolves but its tree cannot be read (a shallow or partial clone): no base, not a break.
    console.log(`proto:breaking: skipped: cannot read the protos of ${against}: ${String(err.stderr ?? err).trim()}`);
    return 0;
  }
  if (!existsSync(join(dir, "buf.yaml"))) {
    console.log(`proto:breaking: skipped: ${against} has no buf.yaml yet: nothing to compare against`);
    return 0;
  }
  console.log(`proto:breaking: comparing proto/ against ${against}`);
  try {
    execFileSync(join(root, "node_modules/.bin/buf"), ["breaking", "--against", dir], { cwd: root, stdio: "inherit" });
  } catch (err) {
    console.error(`proto:breaking: breaking change against ${against} (or buf failed): ${err.message}`);
    return 1;
  }
  console.log(`proto:breaking: no breaking change against ${against}`);
  return 0;
}

const dir = mkdtempSync(join(tmpdir(), "capa-proto-base-"));
try {
  process.exitCode = check(dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
