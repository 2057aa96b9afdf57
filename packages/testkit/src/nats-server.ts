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
  /**
   * An `authorization { ... }` block (e.g. the auth.conf @capa/nats-auth renders): written to `<storeDir>/auth.conf`
   * and included from the config, so the server refuses anonymous clients and enforces each user's permissions.
   */
  authorization?: string;
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
  /**
   * Replaces the included authorization block and reloads the server's config (SIGHUP), resolving once the server
   * says it reloaded. Only for a server started with `authorization`.
   */
  setAuthorization(authorization: string): Promise<void>;
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
  const authPath = join(storeDir, "auth.conf");
  if (options.authorization !== undefined) writeFileSync(authPath, options.authorization);
  writeFileSync(
    configPath,
    [
      `listen: 127.0.0.1:${port}`,
      `server_name: capa_${port}`,
      `max_payload: 8MB`,
      `jetstream { store_dir: ${JSON.stringify(join(storeDir, "js"))} }`,
      options.extraConfig ?? "",
      // A relative include: nats-server resolves includes against the config file's directory.
      options.authorization !== undefined ? `include "auth.conf"` : "",
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
    async setAuthorization(authorization) {
      if (options.authorization === undefined) throw new Error("the server was started without authorization");
      writeFileSync(authPath, authorization);
      await reload(child, options.startTimeoutMs ?? 10_000);
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

/** SIGHUP, then waits for the server's "Reloaded" log line (it logs the reload to stderr). */
async function reload(child: ChildProcess, timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => {
      done();
      reject(new Error(`nats-server did not reload its config within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/Reloaded server configuration/.test(output)) {
        done();
        resolve();
      } else if (/Failed to reload|config reload failed/i.test(output)) {
        done();
        reject(new Error(`nats-server refused the new config:\n${output}`));
      }
    };
    const done = () => {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.stderr?.off("data", onData);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.kill("SIGHUP");
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
