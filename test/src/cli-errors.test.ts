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
    expect(result.stderr).toBe(
      "capa: capa submit needs a command after -- (capa submit [flags] -- CMD ARGS) or a job file (-f job.yaml)\n",
    );
  });

  it("lists every verb in its help", async () => {
    const result = await runCapa(["--help"]);
    expect(result.code).toBe(0);
    for (const verb of [
      "up",
      "scheduler",
      "agent",
      "submit",
      "apply",
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
      "bill",
      "earnings",
      "receipt",
      "tenant",
    ]) {
      expect(result.stdout).toMatch(new RegExp(`^\\s+${verb}\\b`, "m"));
    }
  });

  it("refuses a bad billing period before calling anyone, naming the accepted forms", async () => {
    const addr = `127.0.0.1:${await closedPort()}`;
    for (const args of [
      ["bill", "--from", "last tuesday"],
      ["earnings", "--agent", "a-1", "--to", "2026-13-01"],
      ["receipt", "list", "--from", "2026-11-02", "--to", "2026-11-01T00:00"],
      ["bill", "--month", "2026-11", "--from", "2026-11-01"],
    ]) {
      const result = await runCapa(args, { env: { CAPA_GRPC_ADDR: addr } });
      expect(result.code, args.join(" ")).toBe(1);
      expect(result.stderr).not.toContain("cannot reach");
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toMatch(
        /^capa: (not a date or time|--from .* must be before --to|--month cannot be combined)/,
      );
    }
  });

  it("asks earnings for an agent or a provider", async () => {
    const result = await runCapa(["earnings"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("capa: earnings needs one of --agent ID or --provider NAME\n");
  });

  it("says a receipt could not be checked (a runtime failure, exit 1) when there is no key and no scheduler", async () => {
    const addr = `127.0.0.1:${await closedPort()}`;
    const result = await runCapa(["receipt", "verify", "package.json"], { env: { CAPA_GRPC_ADDR: addr } });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `capa: cannot get the signing key (or pass --key): cannot reach the scheduler at ${addr} (CAPA_GRPC_ADDR)\n`,
    );
  });

  it("keeps exit 2 of receipt verify for usage errors only", async () => {
    const noFile = await runCapa(["receipt", "verify"]);
    expect(noFile.code).toBe(2);
    const unreadable = await runCapa([
      "receipt",
      "verify",
      "/nonexistent/receipt.json",
      "--key",
      "/nonexistent/key.pem",
    ]);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stderr).toMatch(/^capa: cannot read \/nonexistent\/receipt\.json: /);
  });

  it("needs the agent's region for a price change and names an unreachable NATS", async () => {
    const noRegion = await runCapa(["agent", "price", "set", "--agent", "a-1", "H100-80GB=2"]);
    expect(noRegion.code).toBe(1);
    expect(noRegion.stderr).toBe("capa: agent price set needs --region (the agent's region)\n");
    const badPrice = await runCapa(["agent", "price", "set", "--agent", "a-1", "--region", "eu-west", "H100-80GB"]);
    expect(badPrice.code).toBe(1);
    expect(badPrice.stderr).toMatch(/expected MODEL=USD\[\/USD_INTERRUPTIBLE\]/);
    const url = `nats://127.0.0.1:${await closedPort()}`;
    const noNats = await runCapa(["agent", "price", "set", "--agent", "a-1", "--region", "eu-west", "H100-80GB=2"], {
      env: { CAPA_NATS_URL: url },
    });
    expect(noNats.code).toBe(1);
    expect(noNats.stderr).toMatch(
      new RegExp(`^capa: cannot connect to NATS at ${url}.*\\(CAPA_NATS_URL or --nats-url\\)\n$`),
    );
  });
});
