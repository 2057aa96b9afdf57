/**
 * Starts a real nats-server (JetStream, file storage in a temp dir) on free ports for integration tests and
 * `capa up`. One launcher for every suite: tests never talk to a shared or mocked broker.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface NatsServerOptions {
  /** Where JetStream keeps its files; a fresh temp dir by default (removed on stop). */
  storeDir?: string;
  port?: number;
  /** Binary; default `nats-server` on PATH or CAPA_NATS_SERVER. */
  binary?: string;
  /** Extra lines for the config file. */
  extraConfig?: string;
  startTimeoutMs?: number;
}

export interface NatsServerHandle {
  url: string;
  port: number;
  storeDir: string;
  process: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL) and removes a temp store dir. */
  stop(): Promise<void>;
  /** Stops and starts the server again on the same port and store (for restart tests). */
  restart(): Promise<void>;
}

export class NatsServerNotFoundError extends Error {
  override name = "NatsServerNotFoundError";
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const binary = options.binary ?? process.env.CAPA_NATS_SERVER ?? "nats-server";
  const ownsStore = options.storeDir === undefined;
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), "capa-nats-"));
  mkdirSync(storeDir, { recursive: true });
  const port = options.port ?? (await freePort());
  const configPath = join(storeDir, "nats.conf");
  writeFileSync(
    configPath,
    [
      `listen: 127.0.0.1:${port}`,
      `server_name: capa_${port}`,
      `max_payload: 8MB`,
      `jetstream { store_dir: ${JSON.stringify(join(storeDir, "js"))} }`,
      options.extraConfig ?? "",
    ].join("\n"),
  );

  let child = await launchNatsServer(binary, configPath, port, options.startTimeoutMs ?? 10_000);
  const handle: NatsServerHandle = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    process: child,
    async stop() {
      await terminateProcess(child);
      if (ownsStore) rmSync(storeDir, { recursive: true, force: true });
    },
    async restart() {
      await terminateProcess(child);
      child = await launchNatsServer(binary, configPath, port, options.startTimeoutMs ?? 10_000);
      handle.process = child;
    },
  };
  return handle;
}

/** Spawns nats-server on a config file and resolves once it says it is ready (for launchers of several servers). */
export async function launchNatsServer(
  binary: string,
  configPath: string,
  port: number,
  timeoutMs: number,
): Promise<ChildProcess> {
  const child = spawn(binary, ["-c", configPath], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`nats-server did not start on port ${port} within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Server is ready")) {
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        child.stderr?.off("data", onData);
        // Keep draining so a chatty server never blocks on a full pipe.
        child.stdout?.resume();
        child.stderr?.resume();
        resolve(child);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        err.code === "ENOENT"
          ? new NatsServerNotFoundError(`${binary} not found: install it (apt-get install nats-server)`)
          : err,
      );
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code} before it was ready:\n${output}`));
    });
  });
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
export async function terminateProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
