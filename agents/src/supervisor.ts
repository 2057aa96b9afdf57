/**
 * The per-task supervisor: a tiny Node script between the agent and a task, so that a task never outlives the agent
 * that started it. Tasks run in their own process group (cancel must reach everything they start), which also means
 * nothing kills them when the agent is SIGKILLed or OOM-killed; without this the scheduler would re-place the task
 * elsewhere while the old copy kept running on GPUs it believes free.
 *
 * Why a script written to disk from a string constant (and not a `supervisor.ts` compiled to dist, nor a `.cjs` file
 * in src): tsc does not copy `.js`/`.cjs` files, a compiled `.ts` does not exist when vitest runs the sources, and
 * `node -e <source>` would put the whole script on every `ps` line. A string in this module exists wherever the
 * module runs (src under vitest, dist in production); it is written once, content-addressed
 * (`capa-task-supervisor-<hash>.cjs`, so agents of different versions sharing a work dir never run each other's),
 * under `<workDir>/bin`, and run with `process.execPath`. CommonJS, node built-ins only, no environment of its own
 * (a tenant's NODE_OPTIONS must not reach it).
 *
 * Protocol (the agent spawns it detached, stdio [pipe, pipe, pipe, pipe]):
 * - stdin, agent → supervisor, JSON-free lines after the first: line 1 is the {@link SupervisorSpec} as JSON; then
 *   `term` (SIGTERM to the task's group now, SIGKILL after the grace) and `kill` (SIGKILL now). EOF on stdin means
 *   the agent is gone (crash included: the kernel closes its end): the supervisor does what `term` does, and exits
 *   once the task has.
 * - stdout / stderr: inherited by the task itself, so the agent reads the task's output from the same pipes, with no
 *   copy in between.
 * - fd 3, supervisor → agent, one JSON object a line ({@link SupervisorReport}): `{"pid":N}` once the task runs (the
 *   leader of its process group), then `{"exit":code,"signal":name}` when the leader has exited (the rest of the
 *   group is SIGKILLed first: leftovers would keep GPUs busy), or `{"error":message,"code":errno}` when it could not
 *   be started. The supervisor then exits with the task's code (128 + n for signal n; 127 when it never started).
 * - SIGTERM to the supervisor is treated like `term`; SIGINT and SIGHUP are ignored (the agent handles a terminal's
 *   Ctrl-C itself and stops tasks with their grace).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** First line on the supervisor's stdin. */
export interface SupervisorSpec {
  command: readonly string[];
  env: Record<string, string>;
  cwd: string;
  killGraceMs: number;
}

/** One line on fd 3. */
export type SupervisorReport =
  | { pid: number }
  | { exit: number | null; signal: string | null }
  | { error: string; code?: string };

/** The file descriptor the supervisor reports on. */
export const REPORT_FD = 3;

export const SUPERVISOR_SOURCE = String.raw`"use strict";
// capa task supervisor, written by @capa/agent (agents/src/supervisor.ts); do not edit, it is rewritten.
const { spawn } = require("node:child_process");
const { writeSync } = require("node:fs");
const { constants } = require("node:os");

const REPORT_FD = 3;
let child;
let pid = 0;
let graceMs = 10000;
let killTimer;
let terminating = false;
let buffered = "";
let specRead = false;

function report(message) {
  try {
    writeSync(REPORT_FD, JSON.stringify(message) + "\n");
  } catch {
    // The agent is gone: nobody to tell.
  }
}

function signalGroup(signal) {
  if (pid <= 0) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the whole group is gone already.
  }
}

function terminate() {
  if (terminating) return;
  terminating = true;
  signalGroup("SIGTERM");
  killTimer = setTimeout(() => signalGroup("SIGKILL"), graceMs);
}

function start(spec) {
  const command = Array.isArray(spec.command) ? spec.command : [];
  if (spec.killGraceMs >= 0) graceMs = spec.killGraceMs;
  try {
    child = spawn(String(command[0] ?? ""), command.slice(1).map(String), {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ["ignore", "inherit", "inherit"],
    });
  } catch (err) {
    failed(err);
    return;
  }
  // Known at once when the program started (uv_spawn returns after the exec): a "term" on the next line reaches it.
  pid = child.pid ?? 0;
  child.once("error", (err) => {
    // Without a pid the program never started; with one it is a failed kill, and 'exit' follows.
    if (child.pid === undefined) failed(err);
  });
  child.once("spawn", () => report({ pid }));
  child.once("exit", (code, signal) => {
    signalGroup("SIGKILL");
    clearTimeout(killTimer);
    report({ exit: code, signal });
    process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
  });
}

function failed(err) {
  report({ error: String((err && err.message) || err), code: err && err.code });
  process.exit(127);
}

function onLine(line) {
  if (!specRead) {
    specRead = true;
    let spec;
    try {
      spec = JSON.parse(line);
    } catch (err) {
      failed(new Error("capa supervisor: unreadable task spec: " + err.message));
      return;
    }
    start(spec);
    return;
  }
  if (line === "term") terminate();
  else if (line === "kill") signalGroup("SIGKILL");
}

process.on("SIGTERM", terminate);
process.on("SIGINT", () => {});
process.on("SIGHUP", () => {});
process.stdin.setEncoding("utf8");
process.stdin.on("data", (data) => {
  buffered += data;
  let nl = buffered.indexOf("\n");
  while (nl >= 0) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    onLine(line);
    nl = buffered.indexOf("\n");
  }
});
function agentGone() {
  // Nothing started yet: nothing to stop. Otherwise stop the task as a cancel would, and exit once it has.
  if (!child) process.exit(1);
  terminate();
}
process.stdin.on("end", agentGone);
process.stdin.on("error", agentGone);
`;

const SCRIPT_NAME = `capa-task-supervisor-${createHash("sha256").update(SUPERVISOR_SOURCE).digest("hex").slice(0, 12)}.cjs`;

let defaultDir: string | undefined;

/**
 * The supervisor script's path in `dir` (created when missing, atomically: an agent racing another on a shared work
 * dir never runs half a file). Without a dir, a private temporary one of this process.
 */
export function supervisorScript(dir?: string): string {
  if (dir === undefined) {
    if (defaultDir === undefined) {
      const created = mkdtempSync(join(tmpdir(), "capa-supervisor-"));
      // Private to this process: gone with it (a running supervisor already has the script loaded).
      process.once("exit", () => rmSync(created, { recursive: true, force: true }));
      defaultDir = created;
    }
    dir = defaultDir;
  }
  const path = resolve(dir, SCRIPT_NAME);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, SUPERVISOR_SOURCE, { mode: 0o644 });
  renameSync(tmp, path);
  return path;
}
