import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { JobFileError, parseDocument } from "./parse.js";
import { jobDocumentFromSpec, jobSpecFromDocument, type SecretResolver } from "./spec.js";

const TRAINING = `
apiVersion: capa/v1
kind: Job
spec:
  kind: training
  command: [sh, train.sh]
  checkpoint: {dir: ckpt, every: 5m}
  data:
    - {name: train-set, source: /datasets/train}
    - {name: vocab, source: "file:///datasets/vocab.txt", target: /inputs/vocab.txt}
  secrets:
    HF_TOKEN: {env: MY_HF_TOKEN}
    DB_PASSWORD: {file: db-password.txt}
`;

const resolver: SecretResolver = (ref) => ("env" in ref ? `env:${ref.env}` : `file:${ref.file}`);

function issuesOf(text: string, resolve: SecretResolver | "none" = resolver): string[] {
  try {
    const doc = parseDocument(text, "job.yaml");
    jobSpecFromDocument(doc, "job.yaml", resolve === "none" ? undefined : resolve);
  } catch (err) {
    if (err instanceof JobFileError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
  return [];
}

describe("job file: checkpoint, data, secrets", () => {
  it("reads checkpoint, data mounts and secret references into the spec", () => {
    const spec = jobSpecFromDocument(parseDocument(TRAINING), "job.yaml", resolver);
    expect(spec.checkpoint).toEqual({ dir: "ckpt", everySeconds: 300 });
    expect(spec.data).toEqual([
      { name: "train-set", source: "/datasets/train", target: "" },
      { name: "vocab", source: "file:///datasets/vocab.txt", target: "/inputs/vocab.txt" },
    ]);
    expect(spec.template.env).toEqual({ HF_TOKEN: "env:MY_HF_TOKEN", DB_PASSWORD: "file:db-password.txt" });
    expect(spec.template.secretEnvNames).toEqual(["HF_TOKEN", "DB_PASSWORD"]);
  });

  it("round trips checkpoint and data; secret values are never written back", () => {
    const spec = jobSpecFromDocument(parseDocument(TRAINING), "job.yaml", resolver);
    const doc = jobDocumentFromSpec(spec);
    expect(doc.spec.env).toBeUndefined();
    expect(doc.spec.secrets).toBeUndefined();
    const again = jobSpecFromDocument(parseDocument(stringify(doc)), "again");
    expect(again.checkpoint).toEqual(spec.checkpoint);
    expect(again.data).toEqual(spec.data);
  });

  it("names each invalid field", () => {
    const bad = `
apiVersion: capa/v1
kind: Job
spec:
  command: [train]
  checkpoint: {every: 5 minutes, keep: 3}
  data:
    - {name: Train, source: /d}
    - {name: blob, source: "s3://bucket/train"}
    - {name: rel, source: datasets/train}
  secrets:
    bad-name: {env: X}
`;
    expect(issuesOf(bad)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^spec\.checkpoint\.every: must be a duration/),
        "spec.checkpoint.keep: unknown field",
        expect.stringMatching(/^spec\.data\[0\]\.name: must be lower-case/),
        expect.stringMatching(/^spec\.secrets\.bad-name: /),
      ]),
    );
    // Past the schema, the scheduler's validator: an unknown scheme and a relative path, under the file's paths.
    const schemes = `
apiVersion: capa/v1
kind: Job
spec:
  command: [train]
  data:
    - {name: blob, source: "s3://bucket/train"}
    - {name: rel, source: datasets/train}
    - {name: blob, source: /d, target: relative}
`;
    expect(issuesOf(schemes)).toEqual([
      "spec.data[0].source: no stager for scheme s3:// (agents stage file and host paths)",
      "spec.data[1].source: must be an absolute host path or a URI (file:///path)",
      "spec.data[2].name: repeats blob",
      "spec.data[2].target: must be an absolute path inside the container",
    ]);
  });

  it("a secret that cannot be read is named with why", () => {
    const fails: SecretResolver = (ref) => {
      throw new Error("env" in ref ? `environment variable ${ref.env} is not set` : "no such file");
    };
    expect(issuesOf(TRAINING, fails)).toEqual([
      "spec.secrets.HF_TOKEN: environment variable MY_HF_TOKEN is not set",
      "spec.secrets.DB_PASSWORD: no such file",
    ]);
    expect(issuesOf(TRAINING, "none")[0]).toMatch(/^spec\.secrets\.HF_TOKEN: cannot be read here/);
  });
});
