/**
 * `capa submit|quote|simulate` flags → a domain JobSpec. Parsing here is about syntax only (is it a number,
 * a dollar amount, K=V?); whether the values are acceptable is the scheduler's call, so a rejected spec
 * comes back as INVALID_ARGUMENT with the field path (`spec.gpus_per_replica: ...`) from the one validator.
 */
import {
  DEFAULT_KILL_GRACE_SECONDS,
  defaultJobSpec,
  JOB_KINDS,
  type JobKind,
  type JobSpec,
  parseUsd,
} from "@capa/domain";
import { type Command, InvalidArgumentError, Option } from "commander";
import { parseDuration } from "./format.js";

export interface SpecFlags {
  name?: string;
  kind?: string;
  gpus?: number;
  replicas?: number;
  gpuModel: string[];
  minVram?: number;
  region: string[];
  excludeRegion: string[];
  dataRegion?: string;
  residency?: string;
  maxPrice?: number;
  budget?: number;
  priority?: number;
  interruptible?: boolean;
  duration?: number;
  demand: Record<string, number>;
  selector: Record<string, string>;
  allowFabricSpanning?: boolean;
  env: Record<string, string>;
  workdir?: string;
  killGrace?: number;
}

const MIB_PER_GIB = 1024;

/** Builds the spec; `command` is everything after `--`. Flags left out keep the "no constraint" defaults. */
export function specFromFlags(flags: SpecFlags, command: string[]): JobSpec {
  const kind = (flags.kind ?? "batch") as JobKind;
  return defaultJobSpec({
    name: flags.name ?? "",
    kind,
    replicas: flags.replicas ?? 1,
    gpusPerReplica: flags.gpus ?? 1,
    gpuModels: [...flags.gpuModel],
    minVramMib: flags.minVram === undefined ? 0 : Math.round(flags.minVram * MIB_PER_GIB),
    regions: [...flags.region],
    excludeRegions: [...flags.excludeRegion],
    dataRegion: flags.dataRegion ?? "",
    residency: flags.residency ?? "",
    maxPricePerGpuHour: flags.maxPrice ?? 0,
    budget: flags.budget ?? 0,
    priority: flags.priority ?? 0,
    interruptible: flags.interruptible ?? false,
    expectedDurationSeconds: flags.duration ?? 0,
    demandByRegion: { ...flags.demand },
    allowFabricSpanning: flags.allowFabricSpanning ?? false,
    nodeSelector: { ...flags.selector },
    template: {
      command: [...command],
      env: { ...flags.env },
      workingDir: flags.workdir ?? "",
      killGraceSeconds: flags.killGrace ?? DEFAULT_KILL_GRACE_SECONDS,
    },
  });
}

// ---- option-argument parsers (commander calls them; a thrown InvalidArgumentError becomes a usage error) ----

export function parseInteger(value: string): number {
  if (!/^[-+]?\d+$/.test(value.trim())) throw new InvalidArgumentError("must be an integer");
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError("is out of range");
  return n;
}

export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError("must be a number");
  return n;
}

/** Dollars ("2.49", "$2.49") → integer micros; never a float on the way. */
export function parseMoney(value: string): number {
  try {
    return parseUsd(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function parseDurationFlag(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export const OFFER_SORT_KEYS = ["price", "free", "region", "model", "vram", "age"] as const;

/** `capa offers --sort`: one of OFFER_SORT_KEYS, "-" in front reverses it ("-price": dearest first). */
export function parseOfferSort(value: string): string {
  const text = value.trim().toLowerCase();
  const key = text.startsWith("-") ? text.slice(1) : text;
  if (!(OFFER_SORT_KEYS as readonly string[]).includes(key)) {
    throw new InvalidArgumentError(`use one of ${OFFER_SORT_KEYS.join(", ")}, with "-" in front to reverse`);
  }
  return text;
}

/** Splits "K=V" at the first "="; the key must be non-empty. */
export function splitKeyValue(value: string): [string, string] {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`expected KEY=VALUE, got ${JSON.stringify(value)}`);
  return [value.slice(0, eq), value.slice(eq + 1)];
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Repeatable and comma-separated: `--region eu-west --region us-east` = `--region eu-west,us-east`. */
export function collectList(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

export function collectKeyValue(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const [k, v] = splitKeyValue(value);
  return { ...previous, [k]: v };
}

export function collectWeight(value: string, previous: Record<string, number> = {}): Record<string, number> {
  const [k, v] = splitKeyValue(value);
  return { ...previous, [k]: parseNumber(v) };
}

export function collectDemand(value: string, previous: Record<string, number> = {}): Record<string, number> {
  const [k, v] = splitKeyValue(value);
  return { ...previous, [k]: parseInteger(v) };
}

/** The spec flags, shared by submit, quote and simulate so the three read the same way. */
export function addSpecOptions(cmd: Command): Command {
  return cmd
    .option("--name <name>", "job name (letters, digits, . _ -)")
    .addOption(new Option("--kind <kind>", "job kind").choices(JOB_KINDS as string[]).default("batch"))
    .option("--gpus <n>", "GPUs per replica, on one agent (0 = CPU-only)", parseInteger, 1)
    .option("--replicas <n>", "replicas (training: gang workers, all or nothing)", parseInteger, 1)
    .option("--gpu-model <model>", "accepted GPU model, e.g. H100-80GB (repeatable; default any)", collectList, [])
    .option("--min-vram <GiB>", "minimum GPU memory in GiB", parseNumber)
    .option("--region <region>", "allowed region (repeatable; default any)", collectList, [])
    .option("--exclude-region <region>", "region to avoid (repeatable)", collectList, [])
    .option("--data-region <region>", "where the job's data lives (placing elsewhere costs egress)")
    .option("--residency <zone>", "every replica must run in this residency zone, e.g. eu")
    .option("--max-price <usd>", "highest price per GPU-hour, in dollars", parseMoney)
    .option("--budget <usd>", "total spend cap for the job, in dollars", parseMoney)
    .option("--priority <n>", "priority (higher first)", parseInteger)
    .option("--interruptible", "may run on cheaper interruptible capacity and be preempted")
    .option("--duration <duration>", "expected run time, e.g. 90m, 2h (prices the job)", parseDurationFlag)
    .option("--demand <region=weight>", "inference: relative demand per region (repeatable)", collectDemand, {})
    .option("--selector <label=value>", "agent label that must match (repeatable)", collectKeyValue, {})
    .option("--allow-fabric-spanning", "training: the gang may span several NVLink domains")
    .option("--env <K=V>", "environment variable for the process (repeatable)", collectKeyValue, {})
    .option("--workdir <dir>", "working directory of the process on the agent")
    .option("--kill-grace <duration>", "time between SIGTERM and SIGKILL on cancel", parseDurationFlag);
}
