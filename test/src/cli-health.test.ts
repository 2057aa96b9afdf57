/**
 * `capa health` (what the compose healthchecks run) against a real scheduler over gRPC: SERVING exits 0, for the
 * server and for a named service; an unknown service, a stopped scheduler or nothing listening exits 1, each
 * address shown with its status.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, runCapa } from "./cli-harness.js";
import { type Harness, startHarness } from "./scheduler-harness.js";

describe("capa health: the scheduler's gRPC health service", () => {
  let h: Harness;
  beforeAll(async () => {
    assertCliBuilt();
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("exits 0 while the scheduler serves, for the whole server and for the JobService", async () => {
    const address = h.scheduler.grpcAddress;
    const server = await runCapa(["health", "--address", address]);
    expect(server.code, server.stderr).toBe(0);
    expect(server.stdout.trim()).toBe(`${address} SERVING`);
    const jobs = await runCapa(["health", "--address", address, "--service", "capa.v1.JobService", "--json"]);
    expect(jobs.code, jobs.stderr).toBe(0);
    expect(JSON.parse(jobs.stdout)).toEqual({ [address]: "SERVING" });
  });

  it("exits 1 for an unknown service and for an address where nothing serves", async () => {
    const unknown = await runCapa(["health", "--address", h.scheduler.grpcAddress, "--service", "no.such.Service"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toMatch(/unreachable \(5 NOT_FOUND|SERVICE_UNKNOWN/);
    const both = await runCapa(["health", "--address", `${h.scheduler.grpcAddress},127.0.0.1:1`, "--timeout", "2s"]);
    expect(both.code).toBe(1);
    expect(both.stdout).toContain(`${h.scheduler.grpcAddress} SERVING`);
    expect(both.stdout).toMatch(/127\.0\.0\.1:1 unreachable/);
    expect(both.stderr).toContain("not serving: 127.0.0.1:1");
  });

  it("exits 1 once the scheduler has stopped serving", async () => {
    const address = h.scheduler.grpcAddress;
    await h.scheduler.stop();
    const after = await runCapa(["health", "--address", address, "--timeout", "2s"]);
    expect(after.code).toBe(1);
    expect(after.stdout).not.toMatch(/ SERVING$/m);
  });
});
