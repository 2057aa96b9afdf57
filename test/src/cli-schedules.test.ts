/**
 * Schedules through the built `capa` (a child process) against a real scheduler: `capa apply -f` creates a
 * `kind: Schedule` from a file (and reports it unchanged the second time), `capa schedules trigger` starts a run,
 * `capa schedules history|get|list` show it, a bad file names its fields, `capa schedules delete` removes it.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, parseJsonOutput, runCapa } from "./cli-harness.js";
import { getJob, type Harness, rpc, startHarness } from "./scheduler-harness.js";

const TENANT = "sched-cli";
let h: Harness;
let dir: string;
const capa = (args: string[]) =>
  runCapa(["--addr", h.scheduler.grpcAddress, "--tenant", TENANT, ...args], { env: { CAPA_TOKEN: h.adminToken } });

beforeAll(async () => {
  assertCliBuilt();
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), "capa-schedules-e2e-"));
}, 60_000);
afterAll(async () => {
  await h?.stop();
});

const FILE = `apiVersion: capa/v1
kind: Schedule
metadata:
  name: nightly-retrain
spec:
  cron: "0 3 * * *"
  timezone: Europe/Berlin
  concurrency: forbid
  historyLimit: 5
  job:
    resources: {gpus: 0}
    command: [python, train.py, --epochs, "3"]
`;

describe("capa schedules", () => {
  it("apply -f, trigger, history, get, list, delete", async () => {
    const file = join(dir, "nightly.yaml");
    writeFileSync(file, FILE);
    const created = await capa(["apply", "-f", file]);
    expect(created.stderr).toBe("");
    expect(created.stdout.trim()).toBe("schedule/nightly-retrain created");
    expect((await capa(["schedules", "apply", "-f", file])).stdout.trim()).toBe("schedule/nightly-retrain unchanged");

    const triggered = await capa([
      "schedules",
      "trigger",
      "nightly-retrain",
      "--id",
      "manual-1",
      "--reason",
      "new data",
    ]);
    expect(triggered.stdout.trim()).toBe("schedule/nightly-retrain: trigger manual-1 queued");
    const again = await capa(["schedules", "trigger", "nightly-retrain", "--id", "manual-1"]);
    expect(again.stdout.trim()).toBe("schedule/nightly-retrain: trigger manual-1 already known (not queued again)");

    const runs = await waitFor(
      async () => {
        const out = parseJsonOutput<{ runs: { runId: string; jobId?: string; triggerId: string; reason: string }[] }>(
          await capa(["schedules", "history", "nightly-retrain", "--json"]),
          "capa schedules history",
        );
        return out.runs.length === 1 && out.runs[0]!.jobId ? out.runs : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: "the triggered run in the history" },
    );
    expect(runs[0]).toMatchObject({ runId: "nightly-retrain-1", triggerId: "manual-1", reason: "new data" });
    const job = await getJob(h, runs[0]!.jobId!);
    expect(job.tenant).toBe(TENANT);
    expect(job.spec!.template!.command).toEqual(["python", "train.py", "--epochs", "3"]);

    const table = await capa(["schedules", "history", "nightly-retrain"]);
    expect(table.stdout).toMatch(/nightly-retrain-1\s+trigger\s+.*started\s+\S+\s+pending\s+manual-1\s+new data/);
    const shown = await capa(["schedules", "get", "nightly-retrain"]);
    expect(shown.stdout).toMatch(/cron:\s+0 3 \* \* \* \(Europe\/Berlin\)/);
    expect(shown.stdout).toMatch(/next fire:\s+20\d\d-\d\d-\d\dT0[12]:00:00Z/); // 03:00 Berlin is 01:00 or 02:00 UTC
    const list = await capa(["schedules", "list"]);
    expect(list.stdout).toMatch(/nightly-retrain\s+0 3 \* \* \*\s+forbid\s+no\s+\S+\s+1\s+1/);

    await rpc((cb) => h.jobs.cancelJob({ jobId: runs[0]!.jobId!, reason: "test" }, cb));
    expect((await capa(["schedules", "delete", "nightly-retrain"])).stdout.trim()).toBe(
      "schedule/nightly-retrain deleted",
    );
    const gone = await capa(["schedules", "get", "nightly-retrain"]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain("not found");
  }, 90_000);

  it("a bad file names each field and creates nothing; submit refuses a Schedule", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(
      file,
      FILE.replace('"0 3 * * *"', '"0 25 * * *"')
        .replace("concurrency: forbid", "concurrency: queue")
        .replace('command: [python, train.py, --epochs, "3"]', "command: []"),
    );
    const bad = await capa(["apply", "-f", file]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("spec.concurrency:");
    expect(bad.stderr).toContain("spec.job.command: must not be empty");
    const cronOnly = join(dir, "cron.yaml");
    writeFileSync(cronOnly, FILE.replace('"0 3 * * *"', '"0 25 * * *"'));
    expect((await capa(["apply", "-f", cronOnly])).stderr).toContain("spec.cron: Invalid value for hour: 25");
    const submitted = await capa(["submit", "-f", join(dir, "nightly.yaml")]);
    expect(submitted.code).not.toBe(0);
    expect(submitted.stderr).toContain("capa submit takes a kind: Job document");
    expect((await capa(["schedules", "list", "--json"])).stdout).not.toContain("nightly-retrain");
  }, 60_000);
});
