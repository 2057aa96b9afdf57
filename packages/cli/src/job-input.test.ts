import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { CliError } from "./errors.js";
import { resolveSpec, secretResolver } from "./job-input.js";
import { addSpecOptions, type SpecFlags } from "./spec.js";

const dir = mkdtempSync(join(tmpdir(), "capa-job-input-"));
const FILE = join(dir, "job.yaml");
writeFileSync(
  FILE,
  `apiVersion: capa/v1
kind: Job
metadata: {name: from-file}
spec:
  kind: training
  replicas: 2
  resources: {gpus: 4, gpuModels: [H100-80GB]}
  regions: [eu-west]
  maxPrice: 2.00
  duration: 2h
  env: {A: file, B: file}
  command: [python, train.py]
`,
);

/** Runs the real submit flag set over `argv` (as typed after `capa submit`) and returns the resolved spec. */
function resolve(argv: string[], defaultCommand?: string[]) {
  let out: ReturnType<typeof resolveSpec> | undefined;
  const cmd = addSpecOptions(new Command("submit").argument("[command...]"))
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} })
    .action((command: string[], flags: SpecFlags, self: Command) => {
      out = resolveSpec(self, flags, command, { verb: "submit", ...(defaultCommand && { defaultCommand }) });
    });
  cmd.parse(argv, { from: "user" });
  return out!;
}

function refusal(argv: string[]): string {
  try {
    resolve(argv);
  } catch (err) {
    if (err instanceof CliError || (err as Error).name === "CommanderError") return (err as Error).message;
    throw err;
  }
  throw new Error(`expected ${argv.join(" ")} to be refused`);
}

describe("submit: the command only after --", () => {
  it("takes everything after --, flags included", () => {
    expect(resolve(["--gpus", "2", "--", "python", "train.py", "--gpus", "8", "--"]).template.command).toEqual([
      "python",
      "train.py",
      "--gpus",
      "8",
      "--",
    ]);
  });

  it("refuses a job file given as the command (it used to run job.yaml and exit 127)", () => {
    expect(refusal(["job.yaml"])).toBe(
      '"job.yaml" looks like a job file, not a command: use capa submit -f job.yaml (a command goes after --)',
    );
    expect(refusal(["--gpus", "1", "train.json"])).toContain("use capa submit -f train.json");
  });

  it("refuses a flag's stray value (`--duration 2 hours` used to make `hours` the command)", () => {
    expect(refusal(["--duration", "2", "hours"])).toContain('"2" has no unit: write 2h, 2m or 2s');
    expect(refusal(["--duration", "2h", "hours"])).toBe(
      '"hours" is not after --: a command goes after -- (capa submit [flags] -- CMD ARGS); if it belongs to a flag\'s value, quote the value',
    );
    expect(refusal(["--name", "my", "job", "--", "true"])).toContain('"job" is not after --');
    expect(refusal(["echo", "hi"])).toContain('"echo" is not after --');
  });

  it("needs a command from -- or the file; quote and simulate default to `true`", () => {
    expect(refusal(["--gpus", "1"])).toContain("needs a command after --");
    expect(resolve(["--gpus", "1"], ["true"]).template.command).toEqual(["true"]);
  });

  it("durations are 90m, 2h, 1h30m, 45s; nothing else", () => {
    expect(resolve(["--duration", "1h30m", "--kill-grace", "45s", "--", "x"])).toMatchObject({
      expectedDurationSeconds: 5400,
      template: { killGraceSeconds: 45 },
    });
    for (const bad of ["90", "1.5h", "1d", "2 hours", "1h 30m"]) {
      expect(refusal(["--duration", bad, "--", "x"])).toContain("--duration");
    }
  });
});

describe("submit -f: the job file, with typed flags on top", () => {
  it("reads the file", () => {
    expect(resolve(["-f", FILE])).toMatchObject({
      name: "from-file",
      kind: "training",
      replicas: 2,
      gpusPerReplica: 4,
      gpuModels: ["H100-80GB"],
      regions: ["eu-west"],
      maxPricePerGpuHour: 2_000_000,
      expectedDurationSeconds: 7200,
      template: { command: ["python", "train.py"], env: { A: "file", B: "file" } },
    });
  });

  it("typed flags override the file; flag defaults do not", () => {
    const spec = resolve([
      "-f",
      FILE,
      "--replicas",
      "3",
      "--region",
      "us-east",
      "--max-price",
      "2.5",
      "--env",
      "B=flag",
      "--",
      "python",
      "eval.py",
    ]);
    expect(spec).toMatchObject({
      name: "from-file",
      kind: "training",
      replicas: 3,
      gpusPerReplica: 4,
      regions: ["us-east"],
      maxPricePerGpuHour: 2_500_000,
      template: { command: ["python", "eval.py"], env: { A: "file", B: "flag" } },
    });
  });

  it("--retries, --retry-backoff and --retry-on build the retry policy, part by part over the file's", () => {
    expect(resolve(["--retries", "2", "--", "x"]).retries).toEqual({ max: 2, backoffSeconds: 10, on: ["failed"] });
    expect(
      resolve(["--retries", "1", "--retry-on", "failed,lost", "--retry-backoff", "1m", "--", "x"]).retries,
    ).toEqual({
      max: 1,
      backoffSeconds: 60,
      on: ["failed", "lost"],
    });
    expect(resolve(["--", "x"]).retries).toBeUndefined();
    expect(refusal(["--retry-on", "lost", "--", "x"])).toBe("--retry-backoff and --retry-on need --retries N");
    const withRetries = join(dir, "retries.yaml");
    writeFileSync(
      withRetries,
      "apiVersion: capa/v1\nkind: Job\nspec:\n  command: [x]\n  retries: {max: 3, backoff: 5s, on: [lost]}\n",
    );
    expect(resolve(["-f", withRetries, "--retries", "1"]).retries).toEqual({ max: 1, backoffSeconds: 5, on: ["lost"] });
    expect(resolve(["-f", withRetries]).retries).toEqual({ max: 3, backoffSeconds: 5, on: ["lost"] });
  });

  it("names the file and the field when the file is wrong", () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "apiVersion: capa/v1\nkind: Job\nspec:\n  replicas: 0\n  command: [x]\n");
    expect(refusal(["-f", bad])).toBe(`${bad}: spec.replicas: must be an integer in 1..1024`);
    expect(refusal(["-f", join(dir, "missing.yaml")])).toContain("cannot read job file");
  });
});

describe("secrets: in job files, read on the submitting machine", () => {
  it("reads {env} from the environment and {file} relative to the job file, naming what is missing", () => {
    const dir = mkdtempSync(join(tmpdir(), "capa-secrets-"));
    try {
      writeFileSync(join(dir, "db-password.txt"), "hunter2\n");
      const resolve = secretResolver(join(dir, "job.yaml"), { MY_TOKEN: "tok-1" });
      expect(resolve({ env: "MY_TOKEN" })).toBe("tok-1");
      expect(resolve({ file: "db-password.txt" })).toBe("hunter2");
      expect(() => resolve({ env: "UNSET_VAR" })).toThrow("environment variable UNSET_VAR is not set");
      expect(() => resolve({ file: "nope.txt" })).toThrow("cannot read nope.txt: no such file");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
