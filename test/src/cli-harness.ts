/**
 * Runs the built `capa` command as a child process, the way people and scripts do. Tests of the CLI go
 * through here so they exercise the real entry point (bin/capa.js → dist/main.js), argument parsing, exit
 * codes and the one-line error contract.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { waitFor } from "@capa/testkit";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const CAPA_BIN = join(REPO_ROOT, "packages/cli/bin/capa.js");
const CAPA_MAIN = join(REPO_ROOT, "packages/cli/dist/main.js");

/** The CLI runs from its build output; fail loudly (never skip) when it is missing. */
export function assertCliBuilt(): void {
  if (!existsSync(CAPA_MAIN)) {
    throw new Error(`${CAPA_MAIN} is missing: run npm run build (npm test builds first)`);
  }
}

export interface CapaResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CapaOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs `capa ARGS` to completion; never throws for a non-zero exit (tests assert on it). */
export function runCapa(args: string[], options: CapaOptions = {}): Promise<CapaResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CAPA_BIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`capa ${args.join(" ")} did not finish within ${options.timeoutMs ?? 60_000} ms:\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** Parses the one JSON document a `--json` command prints, with the command's stderr in the error. */
export function parseJsonOutput<T>(result: CapaResult, what: string): T {
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}: ${result.stderr.trim()}`);
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`${what} printed no JSON document: ${result.stdout.slice(0, 500)}`);
  }
}

/** Starts a long-running `capa` verb; its stdout and stderr are collected as they arrive. */
export function startCapa(
  args: string[],
  options: CapaOptions = {},
): { child: ChildProcess; output: () => { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, [CAPA_BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return { child, output: () => ({ stdout, stderr }) };
}

/** Resolves with the exit code once the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolvePromise) => child.once("exit", (code, signal) => resolvePromise({ code, signal })));
}

/** True while a process with this pid exists (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** What `capa up --json` prints once the scheduler lists every agent. */
export interface UpReady {
  natsUrl: string;
  natsAuthDir: string;
  natsPid: number;
  grpcAddress: string;
  stateDir: string;
  logFile: string;
  pricesSource: string;
  agents: {
    agentId: string;
    region: string;
    provider: string;
    prices: { gpuModel: string; onDemandPerHour: number; interruptiblePerHour: number }[];
  }[];
  /** Credentials files `capa up` wrote (mode 0600): CAPA_CREDENTIALS=<one of them>. */
  credentials: { dir: string; admin: string; tenant: string; provider: string };
}

export interface RunningUp {
  child: ChildProcess;
  output: () => { stdout: string; stderr: string };
  ready: UpReady;
}

/** Starts `capa up --json` (free ports, one agent per region) in `cwd` and resolves with its ready line. */
export async function startCapaUp(cwd: string, extraArgs: string[] = []): Promise<RunningUp> {
  const up = startCapa(
    [
      "up",
      "--json",
      "--nats-port",
      "0",
      "--grpc-port",
      "0",
      "--http-port",
      "0",
      "--agents-per-region",
      "1",
      ...extraArgs,
    ],
    { cwd },
  );
  const ready = await waitFor(
    () => {
      if (up.child.exitCode !== null) throw new Error(`capa up exited ${up.child.exitCode}: ${up.output().stderr}`);
      const line = up.output().stdout.split("\n")[0];
      return line?.endsWith("}") ? (JSON.parse(line) as UpReady) : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 100, what: "capa up to print its ready line" },
  ).catch((err: Error) => {
    if (up.child.exitCode === null && up.child.signalCode === null) up.child.kill("SIGKILL");
    throw new Error(`${err.message}\nstderr:\n${up.output().stderr}`);
  });
  return { ...up, ready };
}

/** Kills what a test's `capa up` left running (it is normally stopped with SIGINT by the test itself). */
export function killCapaUp(up: RunningUp | undefined): void {
  if (!up) return;
  if (up.child.exitCode === null && up.child.signalCode === null) up.child.kill("SIGKILL");
  if (up.ready.natsPid && processAlive(up.ready.natsPid)) process.kill(up.ready.natsPid, "SIGKILL");
}
