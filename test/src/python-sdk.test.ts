/**
 * The Python SDK (clients/python, package capa-client) against a real scheduler and real agents (simulated GPUs):
 * its unittest suite submits, watches, streams logs, cancels, reads an invoice, checks field violations and
 * applies, reads, lists and deletes an inference service (ServiceService); and
 * the README's Python examples run as printed. Needs a python3 with grpcio and protobuf (Debian: python3-grpcio,
 * python3-protobuf; scripts/bootstrap.sh installs them).
 */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./scheduler-harness.js";
import { type MarketAgents, startMarketAgents } from "./scheduler-market.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const sdk = join(root, "clients/python");

/** The first python3 that can import grpc and protobuf (Debian's /usr/bin/python3 before any other on PATH). */
function python(): string {
  for (const candidate of ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(candidate, ["-c", "import grpc, google.protobuf"], { encoding: "utf8" });
    if (r.status === 0) return candidate;
  }
  throw new Error("no python3 with grpcio and protobuf: apt-get install -y python3-grpcio python3-protobuf");
}

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(python(), args, {
      cwd: root,
      env: { ...process.env, PYTHONPATH: sdk, PYTHONDONTWRITEBYTECODE: "1", ...env },
    });
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    child.on("close", (code) => resolve({ code, output }));
  });
}

/** The ```python blocks of the README's Python section, in order. */
function readmePythonBlocks(): string[] {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Python"));
  const end = section.indexOf("\n## ", 3);
  return [...(end > 0 ? section.slice(0, end) : section).matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

describe("Python SDK against a real scheduler", () => {
  let h: Harness;
  let agents: MarketAgents;
  let token = "";
  beforeAll(async () => {
    h = await startHarness();
    // The SDK authenticates like any client: a tenant API key sent as `authorization: Bearer`.
    token = await h.mintKey("tenant", { tenant: "default" });
    agents = await startMarketAgents(h, [
      { agentId: "py-a1", region: "eu-west", h100: "2.00", gpus: 4 },
      { agentId: "py-a2", region: "us-east", h100: "2.50", gpus: 4 },
    ]);
  });
  afterAll(async () => {
    await agents?.stop();
    await h?.stop();
  });

  it("passes the SDK's unittest suite: submit, watch, logs, cancel, invoice, field violations, services", async () => {
    const r = await run(["-m", "unittest", "discover", "-s", join(sdk, "tests"), "-v"], {
      CAPA_GRPC_ADDR: h.scheduler.grpcAddress,
      CAPA_TOKEN: token,
    });
    expect(r.output).toMatch(/Ran 5 tests in/);
    expect(r.output).toMatch(/\nOK\n/);
    expect(r.code, r.output).toBe(0);
  }, 180_000);

  it("runs the README's Python examples as printed", async () => {
    const blocks = readmePythonBlocks();
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const block of blocks) {
      const r = await run(["-c", block], { CAPA_GRPC_ADDR: h.scheduler.grpcAddress, CAPA_TOKEN: token });
      expect(r.code, `${block}\n---\n${r.output}`).toBe(0);
    }
    const five = blocks[0]!.trim().split("\n");
    expect(five.length).toBeLessThanOrEqual(5);
  }, 180_000);
});
