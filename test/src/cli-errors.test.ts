/**
 * The CLI's failure contract, without a scheduler: a non-zero exit and one line on stderr that says what
 * went wrong and what to do.
 */
import { createServer } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, runCapa } from "./cli-harness.js";

/** A port nobody listens on: bind one, note it, close it. */
async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

describe("capa failures", () => {
  beforeAll(() => assertCliBuilt());

  it("names the unreachable scheduler address and the variable that sets it", async () => {
    const addr = `127.0.0.1:${await closedPort()}`;
    const result = await runCapa(["jobs", "--json"], { env: { CAPA_GRPC_ADDR: addr } });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe("");
    expect(result.stderr.trim().split("\n")).toEqual([`capa: cannot reach the scheduler at ${addr} (CAPA_GRPC_ADDR)`]);
  });

  it("prefers --addr over CAPA_GRPC_ADDR", async () => {
    const addr = `127.0.0.1:${await closedPort()}`;
    const result = await runCapa(["--addr", addr, "status", "j-1"], { env: { CAPA_GRPC_ADDR: "127.0.0.1:1" } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`cannot reach the scheduler at ${addr}`);
  });

  it("rejects malformed flags before calling anyone, naming the flag", async () => {
    const result = await runCapa(["submit", "--max-price", "1.2345678", "--", "true"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/--max-price.*at most 6 decimals/);
  });

  it("requires a command for submit", async () => {
    const result = await runCapa(["submit", "--gpus", "1"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/missing required argument 'command'/);
  });

  it("lists every verb in its help", async () => {
    const result = await runCapa(["--help"]);
    expect(result.code).toBe(0);
    for (const verb of [
      "up",
      "scheduler",
      "agent",
      "submit",
      "jobs",
      "status",
      "logs",
      "cancel",
      "agents",
      "offers",
      "quote",
      "explain",
      "policy",
      "simulate",
      "drain",
    ]) {
      expect(result.stdout).toMatch(new RegExp(`^\\s+${verb}\\b`, "m"));
    }
  });
});
