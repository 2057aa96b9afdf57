import { defaultJobSpec } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { JobFileError, parseDocument } from "./parse.js";
import { scheduleSpecFromDocument } from "./schedule.js";
import { jobSpecFromDocument } from "./spec.js";

const NIGHTLY = `
apiVersion: capa/v1
kind: Schedule
metadata:
  name: nightly-retrain
spec:
  cron: "0 3 * * *"
  timezone: Europe/Berlin
  concurrency: replace
  historyLimit: 10
  job:
    kind: training
    replicas: 2
    resources: {gpus: 1}
    command: [python, train.py]
    retries: {max: 1}
`;

function issuesOf(text: string): string[] {
  try {
    const doc = parseDocument(text, "s.yaml");
    if (doc.kind === "Schedule") scheduleSpecFromDocument(doc, "s.yaml");
  } catch (err) {
    if (err instanceof JobFileError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
  return [];
}

const schedule = (spec: string) =>
  `apiVersion: capa/v1\nkind: Schedule\nmetadata: {name: s}\nspec:\n  job: {command: [train]}\n${spec}`;

describe("kind: Schedule → ScheduleSpec", () => {
  it("reads every field, its job through the Job conversion", () => {
    const doc = parseDocument(NIGHTLY);
    if (doc.kind !== "Schedule") throw new Error("expected a Schedule");
    expect(scheduleSpecFromDocument(doc)).toEqual({
      name: "nightly-retrain",
      cron: "0 3 * * *",
      timezone: "Europe/Berlin",
      concurrency: "replace",
      historyLimit: 10,
      suspend: false,
      job: defaultJobSpec({
        kind: "training",
        replicas: 2,
        template: { command: ["python", "train.py"], env: {}, workingDir: "", killGraceSeconds: 10 },
        retries: { max: 1, backoffSeconds: 10, on: ["failed"] },
      }),
    });
  });

  it("defaults: trigger only, forbid, 20 runs of history", () => {
    const doc = parseDocument(schedule(""));
    if (doc.kind !== "Schedule") throw new Error("expected a Schedule");
    expect(scheduleSpecFromDocument(doc)).toMatchObject({ cron: "", concurrency: "forbid", historyLimit: 20 });
  });

  it.each([
    ['  cron: "61 * * * *"\n', "spec.cron: Invalid value for minute: 61"],
    ["  cron: every night\n", "spec.cron: invalid configuration format"],
    ["  timezone: Mars/Base\n", 'spec.timezone: unknown time zone "Mars/Base"'],
    ["  concurrency: queue\n", "spec.concurrency:"],
    ["  historyLimit: 0\n", "spec.historyLimit: must be an integer in 1..100"],
    ["  suspend: maybe\n", "spec.suspend: must be true or false"],
    ["  every: 5m\n", "spec.every: unknown field"],
  ])("%j → %s", (line, expected) => {
    const issues = issuesOf(schedule(line));
    expect(issues.join("\n")).toContain(expected);
    expect(issues).toHaveLength(1);
  });

  it("names the job's fields under spec.job, the name under metadata.name", () => {
    expect(
      issuesOf("apiVersion: capa/v1\nkind: Schedule\nmetadata: {name: s}\nspec:\n  job: {command: [x], replicas: 0}\n"),
    ).toEqual(["spec.job.replicas: must be an integer in 1..1024"]);
    expect(
      issuesOf(
        "apiVersion: capa/v1\nkind: Schedule\nmetadata: {name: s}\nspec:\n  job: {command: [x], kind: inference, demand: {a: 1, b: 1}}\n",
      ),
    ).toEqual(["spec.job.demand: names 2 regions but only 1 replicas"]);
    expect(
      issuesOf("apiVersion: capa/v1\nkind: Schedule\nmetadata: {name: Nightly}\nspec: {job: {command: [x]}}\n"),
    ).toEqual(["metadata.name: must be 1-48 lower-case letters, digits or '-', not at either end"]);
    expect(issuesOf("apiVersion: capa/v1\nkind: Schedule\nspec: {job: {command: [x]}}\n")).toEqual([
      "metadata: is required",
    ]);
    expect(issuesOf("apiVersion: capa/v1\nkind: Schedule\nmetadata: {name: s}\nspec: {}\n")).toEqual([
      "spec.job: is required",
    ]);
  });

  it("submit refuses a Schedule with a hint", () => {
    expect(() => jobSpecFromDocument(parseDocument(NIGHTLY), "s.yaml")).toThrow(
      "s.yaml: kind: is Schedule, not Job: apply it with capa apply -f",
    );
  });
});
