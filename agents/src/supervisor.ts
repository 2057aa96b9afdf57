/**
 * The task supervisor: one small Node process per agent (per work dir) between the agent and its tasks, so that a
 * task never outlives the agent that started it. Tasks run in their own process group (cancel must reach everything
 * they start), which also means nothing kills them when the agent is SIGKILLed or OOM-killed; without this the
 * scheduler would re-place a task elsewhere while the old copy kept running on GPUs it believes free.
 *
 * Why one per agent and not one per task: a Node startup costs ~40-50 ms of CPU, which for short tasks was most of
 * what a job cost end to end (issue #13). One long-lived supervisor pays it once; per task it only forks.
 *
 * Why the supervisor starts the tasks itself (and is their parent) rather than watching tasks the agent started:
 * there is then no window between a task's start and its registration in which an agent's death would leave it
 * unguarded. A start the supervisor has read is guarded from its first instruction; one it has not read never runs.
 *
 * Why a script written to disk from a string constant (and not a `supervisor.ts` compiled to dist, nor a `.cjs` file
 * in src): tsc does not copy `.js`/`.cjs` files, a compiled `.ts` does not exist when vitest runs the sources, and
 * `node -e <source>` would put the whole script on every `ps` line. A string in this module exists wherever the
 * module runs (src under vitest, dist in production); it is written once, content-addressed
 * (`capa-task-supervisor-<hash>.cjs`, so agents of different versions sharing a work dir never run each other's),
 * under `<workDir>/bin`, and run with `process.execPath`. CommonJS, node built-ins only, no environment of its own
 * (a tenant's NODE_OPTIONS must not reach it).
 *
 * Protocol (the agent spawns it detached, stdio [pipe, ignore, inherit, pipe]); tasks are named by an id the agent
 * picks:
 * - stdin, agent → supervisor, one JSON object a line ({@link SupervisorCommand}): `start` (a task's argv, complete
 *   environment, cwd, kill grace and where its output goes), `term` (SIGTERM to the task's group now, SIGKILL after
 *   its grace) and `kill` (SIGKILL now). EOF on stdin means the agent is gone (crash included: the kernel closes its
 *   end): starts not yet made are dropped, every task is stopped as `term` does, and the supervisor exits once the
 *   last has (at once when it has none: that is also how an agent retires an idle supervisor).
 * - output: with `output` ({address, token}), the supervisor opens two connections to the agent's unix socket,
 *   writes `<token> <id> stdout|stderr\n` on each and hands them to the task as its stdout and stderr (then closes
 *   its own copies), so the agent reads the task's output with no copy in between and sees it end when the task's
 *   last process has closed it. The header is in the kernel before the task starts, so it always comes first.
 *   Without `output`, both are /dev/null. stdin is /dev/null.
 * - fd 3, supervisor → agent, one JSON object a line ({@link SupervisorReport}): `{"id","pid"}` once the task runs
 *   (the leader of its process group), then `{"id","exit":code,"signal":name}` when the leader has exited (the rest
 *   of the group is SIGKILLed first: leftovers would keep GPUs busy), or `{"id","error":message,"code":errno}` when
 *   it could not be started.
 * - SIGTERM to the supervisor is `term` for every task it has (it goes on serving); SIGINT and SIGHUP are ignored
 *   (the agent handles a terminal's Ctrl-C itself and stops tasks with their grace).
 * - If the supervisor itself dies, its tasks have lost their guard and their parent (no exit status can reach the
 *   agent any more): the agent SIGKILLs their groups and starts a new supervisor for the next task.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** Where a task's stdout and stderr go: the agent's unix socket and the token that proves a connection is ours. */
export interface SupervisorOutput {
  address: string;
  token: string;
}

/** One line on the supervisor's stdin. */
export type SupervisorCommand =
  | {
      start: number;
      command: readonly string[];
      env: Record<string, string>;
      cwd: string;
      killGraceMs: number;
      output?: SupervisorOutput;
    }
  | { term: number }
  | { kill: number };

/** One line on fd 3. */
export type SupervisorReport =
  | { id: number; pid: number }
  | { id: number; exit: number | null; signal: string | null }
  | { id: number; error: string; code?: string };

/** The file descriptor the supervisor reports on. */
export const REPORT_FD = 3;

export const SUPERVISOR_SOURCE = String.raw`"use strict";
// capa task supervisor, written by @capa/agent (agents/src/supervisor.ts); do not edit, it is rewritten.
const { spawn } = require("node:child_process");
const { writeSync } = require("node:fs");
const net = require("node:net");

const REPORT_FD = 3;
/** id -> { spec, pid, child, sockets, terminating, killTimer, termAfterSpawn, aborted } */
const tasks = new Map();
let agentGone = false;
let buffered = "";

function report(message) {
  try {
    writeSync(REPORT_FD, JSON.stringify(message) + "\n");
  } catch {
    // The agent is gone: nobody to tell.
  }
}

function signalGroup(pid, signal) {
  if (!(pid > 0)) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the whole group is gone already.
  }
}

function dropSockets(task) {
  // destroy, never end: the task holds a copy of each socket, and a shutdown() would close it for the task too.
  for (const s of task.sockets) s.destroy();
  task.sockets = [];
}

function forget(id) {
  tasks.delete(id);
  if (agentGone && tasks.size === 0) process.exit(0);
}

function terminate(task) {
  if (task.pid === 0) {
    // Not started yet (its output connections are being made): stopped the moment it starts.
    task.termAfterSpawn = true;
    return;
  }
  if (task.terminating) return;
  task.terminating = true;
  signalGroup(task.pid, "SIGTERM");
  task.killTimer = setTimeout(() => signalGroup(task.pid, "SIGKILL"), task.graceMs);
}

function failed(id, task, err) {
  dropSockets(task);
  report({ id, error: String((err && err.message) || err), code: err && err.code });
  forget(id);
}

/** The task's stdout and stderr: a connection each to the agent, named by a first line, or /dev/null without one. */
function connectOutput(id, output, done) {
  if (!output) {
    done(null, ["ignore", "ignore"]);
    return;
  }
  const sockets = [];
  let pending = 2;
  let failure = null;
  for (const stream of ["stdout", "stderr"]) {
    const socket = net.connect(String(output.address));
    sockets.push(socket);
    socket.once("error", (err) => {
      failure = failure || err;
      if (--pending === 0) done(failure, sockets);
    });
    socket.once("connect", () => {
      // Handed to the kernel before the task can write a byte after it.
      socket.write(String(output.token) + " " + id + " " + stream + "\n", (err) => {
        failure = failure || err || null;
        if (--pending === 0) done(failure, sockets);
      });
    });
  }
}

function start(message) {
  const id = Number(message.start);
  if (!Number.isSafeInteger(id) || tasks.has(id)) return;
  const task = {
    pid: 0,
    child: undefined,
    sockets: [],
    graceMs: message.killGraceMs >= 0 ? Number(message.killGraceMs) : 10000,
    terminating: false,
    termAfterSpawn: false,
    killNow: false,
    killTimer: undefined,
  };
  tasks.set(id, task);
  connectOutput(id, message.output, (err, stdio) => {
    task.sockets = stdio.filter((s) => typeof s !== "string");
    if (err) return failed(id, task, err);
    // The agent died while the connections were made: it must not start at all.
    if (agentGone) return failed(id, task, new Error("capa supervisor: the agent is gone"));
    spawnTask(id, task, message, stdio);
  });
}

function spawnTask(id, task, message, stdio) {
  const command = Array.isArray(message.command) ? message.command : [];
  let child;
  try {
    child = spawn(String(command[0] ?? ""), command.slice(1).map(String), {
      cwd: message.cwd,
      env: message.env,
      detached: true,
      stdio: ["ignore", stdio[0], stdio[1]],
    });
  } catch (err) {
    return failed(id, task, err);
  }
  // The task has its copies now (dup'd at fork); ours would keep its output open past its end.
  dropSockets(task);
  task.child = child;
  // Known at once when the program started (uv_spawn returns after the exec): a "term" right after reaches it.
  task.pid = child.pid ?? 0;
  child.once("error", (err) => {
    // Without a pid the program never started; with one it is a failed kill, and 'exit' follows.
    if (child.pid === undefined) failed(id, task, err);
  });
  child.once("spawn", () => {
    report({ id, pid: task.pid });
    if (task.killNow) signalGroup(task.pid, "SIGKILL");
    else if (task.termAfterSpawn || agentGone) terminate(task);
  });
  child.once("exit", (code, signal) => {
    // Leftovers of the group would keep GPUs busy after the agent reports them free.
    signalGroup(task.pid, "SIGKILL");
    clearTimeout(task.killTimer);
    report({ id, exit: code, signal });
    forget(id);
  });
}

function onLine(line) {
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    return;
  }
  if (message === null || typeof message !== "object") return;
  if ("start" in message) {
    if (!agentGone) start(message);
    return;
  }
  const task = tasks.get(Number(message.term ?? message.kill));
  if (!task) return;
  if ("term" in message) terminate(task);
  else if (task.pid === 0) task.killNow = true;
  else signalGroup(task.pid, "SIGKILL");
}

function terminateAll() {
  for (const task of tasks.values()) terminate(task);
}

function onAgentGone() {
  if (agentGone) return;
  agentGone = true;
  // Stop every task as a cancel would (tasks still connecting are dropped as they finish), exit once all have.
  if (tasks.size === 0) process.exit(0);
  terminateAll();
}

process.on("SIGTERM", terminateAll);
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
process.stdin.on("end", onAgentGone);
process.stdin.on("error", onAgentGone);
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
