/**
 * Job files end to end: the built `capa` (a child process) submits and applies capa/v1 files to a real scheduler
 * (real nats-server, gRPC), and what the scheduler stored is exactly the file's spec with the typed flags on top.
 * The two commands that used to go silently wrong are refused before anything is sent.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as pb from "@capa/api";
import { jobFromPb } from "@capa/bus";
import { jobSpecFromDocument, parseDocument } from "@capa/jobfile";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertCliBuilt, parseJsonOutput, REPO_ROOT, runCapa } from "./cli-harness.js";
import { getJob, type Harness, rpc, startHarness } from "./scheduler-harness.js";

const TENANT = "jobfile";
let h: Harness;
let dir: string;
const capa = (args: string[]) =>
  runCapa(["--addr", h.scheduler.grpcAddress, "--tenant", TENANT, ...args], { env: { CAPA_TOKEN: h.adminToken } });

beforeAll(async () => {
  assertCliBuilt();
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), "capa-jobfile-e2e-"));
});
afterAll(async () => {
  await h?.stop();
});

describe("capa submit -f / capa apply -f against a scheduler", () => {
  it("submit -f stores the file's spec, typed flags overriding it", async () => {
    const file = join(REPO_ROOT, "examples/train.yaml");
    const expected = jobSpecFromDocument(parseDocument(readFileSync(file, "utf8")));
    const result = await capa(["submit", "-f", file, "--replicas", "3", "--json"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const { job } = parseJsonOutput<{ job: { id: string } }>(result, "capa submit -f");
    const stored = jobFromPb(await getJob(h, job.id));
    expect(stored.tenant).toBe(TENANT);
    expect(stored.spec).toEqual({ ...expected, replicas: 3 });
  });

  it("apply -f creates each document once: applying the same file again changes nothing", async () => {
    const file = join(dir, "two.yaml");
    writeFileSync(
      file,
      [
        "apiVersion: capa/v1\nkind: Job\nmetadata: {name: a}\nspec: {command: [echo, a], resources: {gpus: 0}}\n",
        "apiVersion: capa/v1\nkind: Job\nmetadata: {name: b}\nspec: {command: [echo, b], resources: {gpus: 0}}\n",
      ].join("---\n"),
    );
    const first = await capa(["apply", "-f", file]);
    expect(first.stderr).toBe("");
    const lines = first.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^job\/a j\S+ created$/);
    expect(lines[1]).toMatch(/^job\/b j\S+ created$/);
    const again = await capa(["apply", "-f", file]);
    expect(again.stdout.trim().split("\n")).toEqual(
      lines.map((l) => l.replace(/created$/, "unchanged (applied before)")),
    );
    const listed = await rpc<pb.ListJobsResponse>((cb) =>
      h.jobs.listJobs({ tenant: TENANT, states: [], limit: 100, pageToken: "" }, cb),
    );
    expect(listed.jobs.filter((j) => j.spec?.name === "a")).toHaveLength(1);
  });

  it("apply checks every document before creating any", async () => {
    const file = join(dir, "bad-second.yaml");
    writeFileSync(
      file,
      "apiVersion: capa/v1\nkind: Job\nmetadata: {name: ok}\nspec: {command: [x]}\n---\n" +
        "apiVersion: capa/v1\nkind: Job\nmetadata: {name: bad}\nspec: {command: [x], resources: {gpus: 99}}\n",
    );
    const result = await capa(["apply", "-f", file]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toBe(`capa: ${file} (document 2): spec.resources.gpus: must be an integer in 0..64\n`);
    const listed = await rpc<pb.ListJobsResponse>((cb) =>
      h.jobs.listJobs({ tenant: TENANT, states: [], limit: 100, pageToken: "" }, cb),
    );
    expect(listed.jobs.some((j) => j.spec?.name === "ok")).toBe(false);
  });

  it("refuses `capa submit job.yaml` and `--duration 2 hours` without submitting anything", async () => {
    const before = await rpc<pb.ListJobsResponse>((cb) =>
      h.jobs.listJobs({ tenant: TENANT, states: [], limit: 100, pageToken: "" }, cb),
    );
    const asCommand = await capa(["submit", "job.yaml"]);
    expect(asCommand.code).not.toBe(0);
    expect(asCommand.stderr).toBe(
      'capa: "job.yaml" looks like a job file, not a command: use capa submit -f job.yaml (a command goes after --)\n',
    );
    const stray = await capa(["submit", "--duration", "2", "hours"]);
    expect(stray.code).not.toBe(0);
    expect(stray.stderr).toContain('"2" has no unit: write 2h, 2m or 2s');
    const strayWord = await capa(["submit", "--duration", "2h", "hours"]);
    expect(strayWord.code).not.toBe(0);
    expect(strayWord.stderr).toContain('capa: "hours" is not after --');
    const after = await rpc<pb.ListJobsResponse>((cb) =>
      h.jobs.listJobs({ tenant: TENANT, states: [], limit: 100, pageToken: "" }, cb),
    );
    expect(after.jobs).toHaveLength(before.jobs.length);
  });
});
