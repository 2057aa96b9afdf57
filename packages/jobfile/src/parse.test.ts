import { readFileSync } from "node:fs";
import { defaultJobSpec } from "@capa/domain";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { JobFileError, parseDocument, parseDocuments } from "./parse.js";
import { filePathOfWireField, jobDocumentFromSpec, jobSpecFromDocument } from "./spec.js";

const FULL = `
apiVersion: capa/v1
kind: Job
metadata:
  name: train-llm
spec:
  kind: training
  replicas: 4
  resources:
    gpus: 2
    gpuModels: [H100-80GB, A100-80GB]
    minVramGiB: 80
  regions: [eu-west]
  excludeRegions: us-east
  dataRegion: eu-west
  residency: eu
  maxPrice: 2.49
  budget: "$120.50"
  priority: -3
  interruptible: true
  duration: 1h30m
  demand: {eu-west: 2}
  selector: {tier: gold}
  allowFabricSpanning: true
  command: [python, train.py, --lr, "3e-4"]
  env: {EPOCHS: "3", WANDB_MODE: offline}
  workdir: /data/run
  image: localhost/trainer:1
  killGrace: 45s
  retries: {max: 3, backoff: 30s, on: [failed, lost]}
`;

function issuesOf(text: string): string[] {
  try {
    const doc = parseDocument(text, "job.yaml");
    if (doc.kind === "Job") jobSpecFromDocument(doc, "job.yaml");
  } catch (err) {
    if (err instanceof JobFileError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
  return [];
}

const job = (spec: string) => `apiVersion: capa/v1\nkind: Job\nspec:\n  command: [echo]\n${spec}`;

describe("job file → JobSpec", () => {
  it("reads every field into the domain spec", () => {
    const spec = jobSpecFromDocument(parseDocument(FULL));
    expect(spec).toEqual(
      defaultJobSpec({
        name: "train-llm",
        kind: "training",
        replicas: 4,
        gpusPerReplica: 2,
        gpuModels: ["H100-80GB", "A100-80GB"],
        minVramMib: 81_920,
        regions: ["eu-west"],
        excludeRegions: ["us-east"],
        dataRegion: "eu-west",
        residency: "eu",
        maxPricePerGpuHour: 2_490_000,
        budget: 120_500_000,
        priority: -3,
        interruptible: true,
        expectedDurationSeconds: 5400,
        demandByRegion: { "eu-west": 2 },
        allowFabricSpanning: true,
        nodeSelector: { tier: "gold" },
        template: {
          command: ["python", "train.py", "--lr", "3e-4"],
          env: { EPOCHS: "3", WANDB_MODE: "offline" },
          workingDir: "/data/run",
          killGraceSeconds: 45,
          image: "localhost/trainer:1",
        },
        retries: { max: 3, backoffSeconds: 30, on: ["failed", "lost"] },
      }),
    );
  });

  it("retries default to 10s backoff on failed", () => {
    expect(jobSpecFromDocument(parseDocument(job("  retries: {max: 2}\n"))).retries).toEqual({
      max: 2,
      backoffSeconds: 10,
      on: ["failed"],
    });
  });

  it("elastic: replicas default to max, and the spec round trips", () => {
    const spec = jobSpecFromDocument(parseDocument(job("  kind: training\n  elastic: {min: 2, max: 4}\n")));
    expect(spec.replicas).toBe(4);
    expect(spec.elastic).toEqual({ min: 2, max: 4 });
    const doc = jobDocumentFromSpec(spec);
    expect(doc.spec.replicas).toBeUndefined();
    expect(doc.spec.elastic).toEqual({ min: 2, max: 4 });
    expect(jobSpecFromDocument(parseDocument(stringify(doc)))).toEqual(spec);
  });

  it("round trips: spec → document → spec, as YAML and as JSON", () => {
    const spec = jobSpecFromDocument(parseDocument(FULL));
    const doc = jobDocumentFromSpec(spec);
    expect(jobSpecFromDocument(parseDocument(JSON.stringify(doc)))).toEqual(spec);
    expect(jobSpecFromDocument(parseDocument(stringify(doc)))).toEqual(spec);
  });

  it("a minimal file gets the same defaults as the flags", () => {
    expect(jobSpecFromDocument(parseDocument(job("")))).toEqual(
      defaultJobSpec({ template: { command: ["echo"], env: {}, workingDir: "", killGraceSeconds: 10 } }),
    );
  });

  it("every YAML example in the README's Job files section is valid", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("### Job files"), readme.indexOf("### Billing verbs"));
    const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(0);
    for (const block of blocks) {
      const doc = parseDocument(block, "README");
      if (doc.kind === "Job") expect(jobSpecFromDocument(doc, "README").template.command.length).toBeGreaterThan(0);
    }
  });

  it("the example in examples/ is valid", () => {
    const text = readFileSync(new URL("../../../examples/train.yaml", import.meta.url), "utf8");
    expect(jobSpecFromDocument(parseDocument(text)).replicas).toBe(2);
    const elastic = readFileSync(new URL("../../../examples/train-elastic.yaml", import.meta.url), "utf8");
    expect(jobSpecFromDocument(parseDocument(elastic))).toMatchObject({ replicas: 4, elastic: { min: 2, max: 4 } });
  });
});

describe("job file errors name each invalid field", () => {
  it.each([
    ["  replicas: 0\n", "spec.replicas: must be an integer in 1..1024"],
    ["  replicas: 2.5\n", "spec.replicas: must be an integer in 1..1024"],
    ["  replicas: two\n", "spec.replicas: must be an integer in 1..1024"],
    ["  kind: serving\n", "spec.kind:"],
    ["  resources: {gpus: 65}\n", "spec.resources.gpus: must be an integer in 0..64"],
    ["  resources: {gpuModel: H100}\n", "spec.resources.gpuModel: unknown field"],
    ["  resources: {gpuModels: ['H 100']}\n", "spec.resources.gpuModels[0]: must be a name"],
    ["  resources: {minVramGiB: -1}\n", "spec.resources.minVramGiB: must be at least 0"],
    ["  regions: [eu-west, '']\n", "spec.regions[1]: must be a name"],
    ["  residency: 'e u'\n", "spec.residency: must be a name"],
    ["  maxPrice: 2.4999999\n", "spec.maxPrice: must be a dollar amount with at most 6 decimals"],
    ["  maxPrice: -1\n", "spec.maxPrice: must not be negative"],
    ["  budget: ten\n", "spec.budget: must be a dollar amount"],
    ["  priority: 5000\n", "spec.priority: must be an integer in -1000..1000"],
    ["  interruptible: yes\n", "spec.interruptible: must be true or false"],
    ["  duration: 2 hours\n", "spec.duration: must be a duration such as 90m, 2h, 1h30m or 45s"],
    ["  duration: 2\n", "spec.duration:"],
    ["  killGrace: 1d\n", "spec.killGrace: must be a duration"],
    ["  killGrace: 2h\n", "spec.killGrace: must be an integer in 0..3600"],
    ["  demand: {eu-west: -1}\n", "spec.demand.eu-west: must be an integer"],
    ["  selector: {tier: 1}\n", "spec.selector.tier:"],
    ["  env: {EPOCHS: 3}\n", "spec.env.EPOCHS: must be a string (quote numbers and booleans)"],
    ["  env: {1BAD: x}\n", 'spec.env["1BAD"]:'],
    ["  workdir: 7\n", "spec.workdir:"],
    ["  image: '-v /:/host'\n", "spec.image: must be an image reference"],
    ["  imag: busybox\n", "spec.imag: unknown field"],
    ["  retries: {max: -1}\n", "spec.retries.max: must be an integer in 0..100"],
    ["  retries: {max: 1, backoff: 5}\n", "spec.retries.backoff: must be a duration"],
    ["  retries: {max: 1, on: [crashed]}\n", "spec.retries.on[0]:"],
    ["  retries: {max: 1, on: []}\n", "spec.retries.on: must name at least one of failed, lost, preempted"],
    ["  retries: {max: 1, on: [failed, failed]}\n", "spec.retries.on[1]: repeats failed"],
    ["  retries: {max: 1, backoff: 2h}\n", "spec.retries.backoff: must be an integer in 0..3600"],
    ["  retries: {max: 1, attempts: 1}\n", "spec.retries.attempts: unknown field"],
    ["  kind: training\n  elastic: {min: 3, max: 2}\n", "spec.elastic.min: min must not be above max"],
    ["  kind: training\n  elastic: {min: 0, max: 2}\n", "spec.elastic.min: must be an integer in 1..1024"],
    ["  kind: training\n  elastic: {min: 1}\n", "spec.elastic.max:"],
    ["  kind: training\n  elastic: {min: 1, max: 2, step: 1}\n", "spec.elastic.step: unknown field"],
    ["  elastic: {min: 1, max: 2}\n", "spec.elastic: only training jobs are elastic (kind training)"],
    [
      "  kind: training\n  replicas: 3\n  elastic: {min: 1, max: 2}\n",
      "spec.replicas: must equal elastic.max_replicas (2)",
    ],
  ])("%j → %s", (line, expected) => {
    const issues = issuesOf(job(line));
    expect(issues.join("\n")).toContain(expected);
    expect(issues).toHaveLength(1);
  });

  it("the command: missing, empty, not a list, an empty program", () => {
    const head = "apiVersion: capa/v1\nkind: Job\nspec:\n";
    expect(issuesOf(`${head}  replicas: 1\n`)).toEqual(["spec.command: is required"]);
    expect(issuesOf(`${head}  command: []\n`)).toEqual(["spec.command: must not be empty"]);
    expect(issuesOf(`${head}  command: python train.py\n`)).toEqual([
      "spec.command: must be a list: [program, args...]",
    ]);
    expect(issuesOf(`${head}  command: [python, 3]\n`)).toEqual(["spec.command[1]: must be a string (quote numbers)"]);
    expect(issuesOf(`${head}  command: ['']\n`)).toEqual(["spec.command: must not be empty"]);
  });

  it("reports every invalid field at once", () => {
    expect(issuesOf(job("  replicas: 0\n  resources: {gpus: -1}\n  bogus: 1\n"))).toEqual([
      "spec.replicas: must be an integer in 1..1024",
      "spec.resources.gpus: must be an integer in 0..64",
      "spec.bogus: unknown field",
    ]);
  });

  it("names the domain's limits under the file's paths", () => {
    // A demand naming more regions than replicas is a cross-field rule only the domain validator knows.
    expect(issuesOf(job("  kind: inference\n  demand: {eu-west: 1, us-east: 1}\n"))).toEqual([
      "spec.demand: names 2 regions but only 1 replicas",
    ]);
    expect(filePathOfWireField("gpus_per_replica")).toBe("spec.resources.gpus");
    expect(filePathOfWireField("template.env[X]")).toBe("spec.env[X]");
    expect(filePathOfWireField("gpu_models[3]")).toBe("spec.resources.gpuModels[3]");
  });

  it.each([
    ["kind: Job\nspec: {command: [x]}\n", "apiVersion: must be capa/v1, it is missing"],
    ["apiVersion: capa/v2\nkind: Job\n", 'apiVersion: must be capa/v1, got "capa/v2"'],
    ["apiVersion: capa/v1\nspec: {}\n", "kind: must be one of Job, Schedule, Service, it is missing"],
    ["apiVersion: capa/v1\nkind: job\n", 'kind: must be one of Job, Schedule, Service, got "job"'],
    ["apiVersion: capa/v1\nkind: Job\n", "spec: is required"],
    ["apiVersion: capa/v1\nkind: Job\nmetadata: {name: 'a b'}\nspec: {command: [x]}\n", "metadata.name: must be"],
    ["apiVersion: capa/v1\nkind: Job\nstatus: {}\nspec: {command: [x]}\n", "status: unknown field"],
    ["- a\n- b\n", "must be a mapping with apiVersion, kind and spec"],
    ["", "is empty"],
    ["a: [\n", "is not valid YAML"],
    ["apiVersion: capa/v1\napiVersion: capa/v1\n", "is not valid YAML"],
  ])("document %j → %s", (text, expected) => {
    expect(() => parseDocument(text, "job.yaml")).toThrow(`job.yaml: ${expected}`);
  });

  it("several documents: submit takes one, apply takes all; errors say which document", () => {
    const two = `${job("")}---\n${job("  replicas: 2\n")}`;
    expect(parseDocuments(two)).toHaveLength(2);
    expect(() => parseDocument(two, "f.yaml")).toThrow("has 2 documents");
    expect(() => parseDocuments(`${job("")}---\n${job("  replicas: 0\n")}`, "f.yaml")).toThrow(
      "f.yaml (document 2): spec.replicas",
    );
  });

  it("refuses a file over the size bound", () => {
    expect(() => parseDocument(`# ${"x".repeat(1 << 20)}\n${job("")}`)).toThrow("is larger than");
  });
});
