import { jobSpecViolations } from "@capa/domain";
import { Command, CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { addSpecOptions, parseOfferSort, type SpecFlags, specFromFlags } from "./spec.js";

/** Parses `argv` with the real submit flag set, as `capa submit` does. */
function parse(argv: string[]) {
  const cmd = addSpecOptions(new Command("submit").argument("[command...]"))
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} })
    .action(() => {});
  cmd.parse(argv, { from: "user" });
  return specFromFlags(cmd.opts<SpecFlags>(), cmd.args, undefined, (f) => cmd.getOptionValueSource(f) === "cli");
}

function parseError(argv: string[]): string {
  try {
    parse(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(CommanderError);
    return (err as CommanderError).message;
  }
  throw new Error(`expected ${argv.join(" ")} to be rejected`);
}

describe("submit flags → JobSpec", () => {
  it("--elastic MIN:MAX makes an elastic gang of MAX tasks; a typed --replicas that differs is named", () => {
    const spec = parse(["--kind", "training", "--elastic", "2:4", "--", "train"]);
    expect(spec).toMatchObject({ replicas: 4, elastic: { min: 2, max: 4 } });
    expect(jobSpecViolations(spec)).toEqual([]);
    const mismatch = parse(["--kind", "training", "--elastic", "2:4", "--replicas", "3", "--", "train"]);
    expect(jobSpecViolations(mismatch).map((v) => v.field)).toEqual(["spec.replicas"]);
    expect(parseError(["--elastic", "two", "--", "x"])).toContain("must be MIN:MAX workers");
    expect(jobSpecViolations(parse(["--elastic", "1:2", "--", "x"]))[0]).toMatchObject({ field: "spec.elastic" });
  });

  it("defaults to one batch replica on one GPU with no constraints", () => {
    const spec = parse(["--", "sh", "-c", "echo hi"]);
    expect(spec).toMatchObject({
      kind: "batch",
      replicas: 1,
      gpusPerReplica: 1,
      gpuModels: [],
      regions: [],
      maxPricePerGpuHour: 0,
      budget: 0,
      template: { command: ["sh", "-c", "echo hi"], env: {}, workingDir: "" },
    });
    expect(jobSpecViolations(spec)).toEqual([]);
  });

  it("maps every flag to its field, money as integer micros and durations as seconds", () => {
    const spec = parse([
      "--name",
      "train-1",
      "--kind",
      "training",
      "--gpus",
      "8",
      "--replicas",
      "2",
      "--gpu-model",
      "H100-80GB",
      "--gpu-model",
      "H200-141GB,A100-80GB",
      "--min-vram",
      "40",
      "--region",
      "eu-west",
      "--exclude-region",
      "us-east",
      "--data-region",
      "eu-west",
      "--residency",
      "eu",
      "--max-price",
      "2.50",
      "--budget",
      "$100.000001",
      "--priority",
      "-5",
      "--interruptible",
      "--duration",
      "1h30m",
      "--selector",
      "tier=gold",
      "--allow-fabric-spanning",
      "--env",
      "A=1",
      "--env",
      "B=x=y",
      "--workdir",
      "/data",
      "--kill-grace",
      "30s",
      "--",
      "python",
      "train.py",
      "--lr",
      "3e-4",
    ]);
    expect(spec).toEqual({
      name: "train-1",
      kind: "training",
      replicas: 2,
      gpusPerReplica: 8,
      gpuModels: ["H100-80GB", "H200-141GB", "A100-80GB"],
      minVramMib: 40 * 1024,
      regions: ["eu-west"],
      excludeRegions: ["us-east"],
      dataRegion: "eu-west",
      residency: "eu",
      maxPricePerGpuHour: 2_500_000,
      budget: 100_000_001,
      priority: -5,
      interruptible: true,
      expectedDurationSeconds: 5400,
      demandByRegion: {},
      allowFabricSpanning: true,
      nodeSelector: { tier: "gold" },
      template: {
        command: ["python", "train.py", "--lr", "3e-4"],
        env: { A: "1", B: "x=y" },
        workingDir: "/data",
        killGraceSeconds: 30,
      },
      deadlineUnixMs: 0,
    });
  });

  it("collects inference demand per region as integers", () => {
    const spec = parse([
      "--kind",
      "inference",
      "--replicas",
      "3",
      "--demand",
      "eu-west=70",
      "--demand",
      "us-east=30",
      "--",
      "serve",
    ]);
    expect(spec.demandByRegion).toEqual({ "eu-west": 70, "us-east": 30 });
  });

  it("passes a negative GPU count through, so the scheduler's validator names spec.gpus_per_replica", () => {
    const spec = parse(["--gpus", "-1", "--", "true"]);
    expect(spec.gpusPerReplica).toBe(-1);
    expect(jobSpecViolations(spec).map((v) => v.field)).toEqual(["spec.gpus_per_replica"]);
  });

  it.each([
    [["--gpus", "two"], /--gpus <n>.*must be an integer/],
    [["--gpus", "1.5"], /must be an integer/],
    [["--max-price", "2.4999999"], /--max-price.*at most 6 decimals/],
    [["--max-price", "cheap"], /--max-price/],
    [["--duration", "soon"], /--duration.*not a duration/],
    [["--env", "NOEQUALS"], /--env.*expected KEY=VALUE/],
    [["--env", "=v"], /expected KEY=VALUE/],
    [["--demand", "eu-west=lots"], /--demand.*must be an integer/],
    [["--kind", "service"], /--kind.*Allowed choices are training, inference, batch/],
    [["--min-vram", "big"], /--min-vram.*must be a number/],
  ])("rejects %j with a message naming the flag", (argv, message) => {
    expect(parseError([...argv, "--", "true"])).toMatch(message);
  });
});

describe("offers --sort", () => {
  it("accepts the order book's keys, reversed with '-', case ignored", () => {
    for (const key of ["price", "-price", "free", "region", "model", "vram", "age", "-age"]) {
      expect(parseOfferSort(key)).toBe(key);
    }
    expect(parseOfferSort(" Price ")).toBe("price");
  });

  it.each(["cheap", "--price", "", "+price"])("refuses %j, naming the keys", (key) => {
    expect(() => parseOfferSort(key)).toThrow(/use one of price, free, region, model, vram, age/);
  });
});
