/**
 * The Schedule and Service kinds through the built `capa` (a child process) against a real scheduler: `capa apply
 * -f` creates a `kind: Schedule` from a file (and reports it unchanged the second time), `capa schedules trigger`
 * starts a run, `capa schedules history|get|list` show it, a bad file names its fields, `capa schedules delete`
 * removes it; `capa apply -f service.yaml` and `capa service apply -f` (YAML or the old ServiceSpec JSON) store
 * exactly the file's ServiceSpec.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pb from "@capa/api";
import { parseDocument, serviceSpecJsonFromDocument } from "@capa/jobfile";
import { waitFor } from "@capa/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, parseJsonOutput, REPO_ROOT, runCapa } from "./cli-harness.js";
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
}, 180_000);
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
  }, 180_000);

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
  }, 180_000);
});

describe("capa apply -f: kind Service", () => {
  const getService = async (name: string) =>
    (await rpc<pb.GetServiceResponse>((cb) => h.services.getService({ tenant: TENANT, name }, cb))).service!;

  it("apply -f examples/service.yaml stores the file's ServiceSpec; service apply -f takes YAML and the old JSON", async () => {
    const file = join(REPO_ROOT, "examples/service.yaml");
    const doc = parseDocument(readFileSync(file, "utf8"));
    if (doc.kind !== "Service") throw new Error("examples/service.yaml is not a Service");
    const created = await capa(["apply", "-f", file]);
    expect(created.stderr).toBe("");
    expect(created.stdout.trim()).toBe(`service/${doc.metadata.name} revision 1 created`);
    const stored = await getService(doc.metadata.name);
    const expected = pb.ServiceSpec.fromJSON(serviceSpecJsonFromDocument(doc));
    // The scheduler fills defaults (0 = default on the wire): compare what the file set.
    expect(stored.spec!.template!.command).toEqual(expected.template!.command);
    expect(stored.spec!.regions.map((r) => [r.region, r.minReplicas, r.maxReplicas, r.demand])).toEqual(
      expected.regions.map((r) => [
        r.region,
        r.minReplicas || expected.minReplicas,
        r.maxReplicas || expected.maxReplicas,
        r.demand,
      ]),
    );
    expect(stored.spec!.target).toEqual(expected.target);
    expect(stored.spec!.rollout!.canaryPercent).toBe(expected.rollout!.canaryPercent);
    expect(stored.spec!.drift).toEqual(expected.drift);
    expect(stored.spec!.readiness!.httpPath).toBe(expected.readiness!.httpPath);
    expect(stored.spec!.modelVersion).toBe(expected.modelVersion);
    expect((await capa(["apply", "-f", file])).stdout.trim()).toBe(`service/${doc.metadata.name} revision 1 unchanged`);
    // capa service apply -f: the same YAML, with a new model version → revision 2.
    const v2 = join(dir, "service-v2.yaml");
    writeFileSync(v2, readFileSync(file, "utf8").replace(/modelVersion: .*/, "modelVersion: echo-v2"));
    const rolled = await capa(["service", "apply", "-f", v2]);
    expect(rolled.stdout.trim()).toBe(`service ${doc.metadata.name}: revision 2`);
    expect((await getService(doc.metadata.name)).spec!.modelVersion).toBe("echo-v2");
    // The ServiceSpec JSON form still works.
    const json = join(dir, "legacy.json");
    writeFileSync(
      json,
      JSON.stringify({ name: "legacy", template: { command: ["serve"] }, regions: [{ region: "eu-west" }] }),
    );
    expect((await capa(["service", "apply", "-f", json])).stdout.trim()).toBe("service legacy: revision 1");
    // A bad Service file names its fields.
    const bad = join(dir, "bad-service.yaml");
    writeFileSync(bad, readFileSync(file, "utf8").replace("period: 500ms", "period: soon"));
    const refused = await capa(["apply", "-f", bad]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("spec.readiness.period: must be a duration such as 500ms");
    for (const name of [doc.metadata.name, "legacy"]) await capa(["service", "delete", name]);
  }, 180_000);
});
