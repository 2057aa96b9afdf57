/** Child processes of the end-to-end benchmarks (e2e-procs.js roles), and a promisified unary gRPC call. */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Metadata, type ServiceError } from "@grpc/grpc-js";

const PROCS = join(dirname(fileURLToPath(import.meta.url)), "e2e-procs.js");

/**
 * An admin API key for a benchmark's scheduler (gRPC is authenticated): `bootstrapToken` goes into the scheduler's
 * config, `metadata` on every call (`authorization: Bearer`, as the CLI sends it). The token has the shape
 * `capa_<key id>_<secret>` that `capa auth new-token` prints; the scheduler registers it as its bootstrap admin.
 */
export function benchAdmin(): { bootstrapToken: string; metadata: Metadata } {
  const bootstrapToken = `capa_${randomBytes(8).toString("hex")}_${randomBytes(32).toString("base64url")}`;
  const metadata = new Metadata();
  metadata.set("authorization", `Bearer ${bootstrapToken}`);
  return { bootstrapToken, metadata };
}

export function rpc<T>(invoke: (cb: (err: ServiceError | null, res: T) => void) => unknown): Promise<T> {
  return new Promise((resolve, reject) => invoke((err, res) => (err ? reject(err) : resolve(res))));
}

/**
 * Spawns a child of e2e-procs.js and resolves with its first stdout line (JSON) once it is ready. Its stdin is
 * a pipe from this process: the child stops when it closes, so none outlives the benchmark.
 */
export async function spawnChild(
  role: string,
  args: object,
  execArgv: string[] = [],
): Promise<{
  child: ChildProcess;
  ready: Record<string, unknown>;
  /** Sends one command line to the child (e2e-procs.ts reads them) and resolves with its JSON answer line. */
  ask(command: string): Promise<Record<string, unknown>>;
}> {
  const child = spawn(process.execPath, [...execArgv, PROCS, role, JSON.stringify(args)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${role} exited with ${code} before it was ready`)));
    lines.once("line", (line) => resolve(JSON.parse(line)));
  });
  // One question at a time: each answer is the next line, so the questions are chained.
  let last: Promise<unknown> = Promise.resolve();
  const ask = (command: string) => {
    const answer = last.then(
      () =>
        new Promise<Record<string, unknown>>((resolve) => {
          lines.once("line", (line) => resolve(JSON.parse(line)));
          child.stdin!.write(`${command}\n`);
        }),
    );
    last = answer.catch(() => undefined);
    return answer;
  };
  return { child, ready, ask };
}

export async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}
