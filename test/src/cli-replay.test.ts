/**
 * `capa replay` as scripts use it: the built CLI as a child process, a trace and a fleet in a temp dir, the
 * `--json` contract on the last stdout line, the plot file, converters, and bad input named by line and column.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, runCapa } from "./cli-harness.js";

const dir = mkdtempSync(join(tmpdir(), "capa-replay-"));
const fleet = join(dir, "fleet.csv");
const trace = join(dir, "trace.csv");

beforeAll(() => {
  assertCliBuilt();
  writeFileSync(
    fleet,
    [
      "agent_id,region,gpu_model,gpus,price_per_gpu_hour,spot_price",
      "a-dear,us-east,H100-80GB,1,4.00,",
      "b-cheap,eu-west,H100-80GB,1,2.00,1.00",
    ].join("\n"),
  );
  writeFileSync(
    trace,
    [
      "job_id,submit_s,duration_s,gpus,gpu_model,kind",
      "j1,0,3600,1,H100,batch",
      "j2,0,3600,1,,batch",
      "j3,1800,1800,1,any,batch",
    ].join("\n"),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("capa replay", () => {
  it("--json: the last stdout line is the contract object, the active profile named active", async () => {
    const r = await runCapa(["replay", "--trace", trace, "--fleet", fleet, "--json", "--plot", join(dir, "p.svg")]);
    expect(r.stderr).toContain("replayed 3 jobs over 2 agents");
    expect(r.code).toBe(0);
    const last = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(Object.keys(last)).toEqual(["jobs", "agents", "policies"]);
    expect(last.jobs).toBe(3);
    expect(last.agents).toBe(2);
    expect(last.policies.map((p: { name: string }) => p.name)).toEqual([
      "active",
      "first-fit",
      "random",
      "spread",
      "cheapest-single-region",
    ]);
    const active = last.policies[0];
    expect(Object.keys(active)).toEqual([
      "name",
      "baseline",
      "placed",
      "costMicros",
      "meanQueueS",
      "p99QueueS",
      "utilisation",
    ]);
    // Hand-computed: j1 and j2 on both GPUs for an hour ($2 + $4), j3 waits 30 min then $1 on the cheap one.
    expect(active).toMatchObject({
      baseline: false,
      placed: 3,
      costMicros: 7_000_000,
      meanQueueS: 600,
      p99QueueS: 1800,
    });
    expect(last.policies[1]).toMatchObject({ name: "first-fit", baseline: true, costMicros: 8_000_000 });
    const svg = readFileSync(join(dir, "p.svg"), "utf8");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("cheapest-single-region");
  });

  it("prints the comparison table with the LP column, and compares extra profiles", async () => {
    const r = await runCapa(
      ["replay", "--trace", trace, "--fleet", fleet, "--profile", "balanced", "--baselines", "first-fit", "--no-plot"],
      { cwd: dir },
    );
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/^POLICY\s+PLACED\s+WAITING\s+COST\s+VS ACTIVE\s+COST\/LP\s+MEAN WAIT/);
    // Columns: placed, waiting, cost, vs active, cost/LP, mean, p50, p99 wait, utilisation (9000 / 10800 GPU-s).
    expect(lines[1]).toMatch(/^active\s+3\s+0\s+\$7\.00\s+1\s+10m\s+0s\s+30m\s+83\.3%\s+0\s+0\s/);
    expect(lines[2]).toMatch(/^balanced\s+3\s+0\s+\$7\.00\s+1x\s+1\s/);
    expect(lines[3]).toMatch(/^first-fit\s+3\s+0\s+\$8\.00\s+1\.14x\s+1\.1429\s+10m/);
    expect(r.stdout).toContain("replayed 3 jobs over 2 agents");
    expect(existsSync(join(dir, "capa-replay.svg"))).toBe(false);
  });

  it("names the line and column of a bad trace cell and exits 1", async () => {
    const bad = join(dir, "bad.csv");
    writeFileSync(bad, "job_id,submit_s,duration_s,gpus,gpu_model,kind\nj1,0,60,1,,batch\nj2,0,-5,1,,batch\n");
    const r = await runCapa(["replay", "--trace", bad, "--fleet", fleet, "--json"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim()).toBe(`capa: ${bad}: line 3, column 3 (duration_s): must be non-negative, got -5`);
  });

  it("convert writes a capa trace that replay reads", async () => {
    const pods = join(dir, "pods.csv");
    writeFileSync(
      pods,
      [
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time",
        "p0,1000,100,1,1000,,LS,Running,100,3700,100",
        "p1,1000,100,0,0,,LS,Running,120,500,120",
      ].join("\n"),
    );
    const out = join(dir, "converted.csv");
    const c = await runCapa(["replay", "convert", "alibaba-v2023", pods, "-o", out]);
    expect(c.code).toBe(0);
    expect(c.stderr).toContain("converted 1 jobs (skipped: no GPU 1)");
    const r = await runCapa(["replay", "--trace", out, "--fleet", fleet, "--json", "--no-plot"]);
    expect(r.code).toBe(0);
    const last = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(last.policies[0]).toMatchObject({ name: "active", placed: 1, costMicros: 2_000_000 });
  });
});
