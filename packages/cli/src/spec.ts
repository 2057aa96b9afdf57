/**
 * `capa submit|quote|simulate` flags → a domain JobSpec. Parsing here is about syntax only (is it a number,
 * a dollar amount, K=V?); whether the values are acceptable is the scheduler's call, so a rejected spec
 * comes back as INVALID_ARGUMENT with the field path (`spec.gpus_per_replica: ...`) from the one validator.
 */

import { readFileSync } from "node:fs";
import {
  type CheckpointPolicy,
  type DataMount,
  DEFAULT_KILL_GRACE_SECONDS,
  defaultJobSpec,
  type ElasticPolicy,
  JOB_KINDS,
  type JobKind,
  type JobSpec,
  parseUsd,
  RETRY_ON,
  type RetryOn,
  type RetryPolicy,
} from "@capa/domain";
import { DEFAULT_RETRY_BACKOFF, DEFAULT_RETRY_ON, parseDuration as parseStrictDuration } from "@capa/jobfile";
import { type Command, InvalidArgumentError, Option } from "commander";
import { CliError } from "./errors.js";
import { parseDuration } from "./format.js";

export interface SpecFlags {
  /** A capa/v1 job file; the flags given on the command line override its values. */
  file?: string;
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
  secret?: Record<string, string>;
  secretFile?: Record<string, string>;
  workdir?: string;
  killGrace?: number;
  image?: string;
  retries?: number;
  retryBackoff?: number;
  retryOn?: string[];
  checkpointDir?: string;
  checkpointEvery?: number;
  /** --data name=source (repeatable); replaces the file's `data:` when typed. */
  data?: Record<string, string>;
  elastic?: ElasticPolicy;
}

const MIB_PER_GIB = 1024;

/**
 * Builds the spec; `command` is everything after `--` (empty: keep `base`'s). Without a base, every flag applies
 * (defaults included). With one (a job file), only the flags `given` says were typed override it; maps (env,
 * selector, demand) are merged key by key, the typed keys winning.
 */
export function specFromFlags(
  flags: SpecFlags,
  command: string[],
  base?: JobSpec,
  given: (flag: keyof SpecFlags) => boolean = () => true,
): JobSpec {
  const from = base ?? defaultJobSpec();
  const use = base === undefined ? () => true : given;
  const pick = <T>(flag: keyof SpecFlags, value: T | undefined, fallback: T): T =>
    use(flag) && value !== undefined ? value : fallback;
  const t = from.template;
  const elastic = use("elastic") && flags.elastic ? flags.elastic : from.elastic;
  // An elastic job's replicas is its max unless --replicas was typed too (validation then names a mismatch).
  const replicas =
    use("elastic") && flags.elastic && !given("replicas")
      ? flags.elastic.max
      : pick("replicas", flags.replicas, from.replicas);
  const secrets = { ...(use("secretFile") ? flags.secretFile : {}), ...(use("secret") ? flags.secret : {}) };
  const secretNames = [...new Set([...(t.secretEnvNames ?? []), ...Object.keys(secrets)])];
  return defaultJobSpec({
    name: pick("name", flags.name, from.name),
    kind: pick("kind", flags.kind as JobKind | undefined, from.kind),
    replicas,
    gpusPerReplica: pick("gpus", flags.gpus, from.gpusPerReplica),
    gpuModels: [...pick("gpuModel", flags.gpuModel, from.gpuModels)],
    minVramMib: pick(
      "minVram",
      flags.minVram === undefined ? undefined : Math.round(flags.minVram * MIB_PER_GIB),
      from.minVramMib,
    ),
    regions: [...pick("region", flags.region, from.regions)],
    excludeRegions: [...pick("excludeRegion", flags.excludeRegion, from.excludeRegions)],
    dataRegion: pick("dataRegion", flags.dataRegion, from.dataRegion),
    residency: pick("residency", flags.residency, from.residency),
    maxPricePerGpuHour: pick("maxPrice", flags.maxPrice, from.maxPricePerGpuHour),
    budget: pick("budget", flags.budget, from.budget),
    priority: pick("priority", flags.priority, from.priority),
    interruptible: pick("interruptible", flags.interruptible, from.interruptible),
    expectedDurationSeconds: pick("duration", flags.duration, from.expectedDurationSeconds),
    demandByRegion: { ...from.demandByRegion, ...(use("demand") ? flags.demand : {}) },
    allowFabricSpanning: pick("allowFabricSpanning", flags.allowFabricSpanning, from.allowFabricSpanning),
    nodeSelector: { ...from.nodeSelector, ...(use("selector") ? flags.selector : {}) },
    template: {
      command: command.length > 0 ? [...command] : [...t.command],
      env: { ...t.env, ...(use("env") ? flags.env : {}), ...secrets },
      workingDir: pick("workdir", flags.workdir, t.workingDir),
      ...(pick("image", flags.image, t.image) ? { image: pick("image", flags.image, t.image) } : {}),
      killGraceSeconds: pick("killGrace", flags.killGrace, base ? t.killGraceSeconds : DEFAULT_KILL_GRACE_SECONDS),
      ...(secretNames.length > 0 ? { secretEnvNames: secretNames } : {}),
    },
    ...checkpointFrom(flags, from.checkpoint, use),
    ...dataFrom(flags, from.data, use),
    ...retriesFrom(flags, from.retries, use),
    ...(elastic && { elastic: { ...elastic } }),
  });
}

/** --checkpoint-dir D / --checkpoint-every D: each typed part overrides the file's `checkpoint`. */
function checkpointFrom(
  flags: SpecFlags,
  base: CheckpointPolicy | undefined,
  use: (flag: keyof SpecFlags) => boolean,
): { checkpoint?: CheckpointPolicy } {
  const dir = use("checkpointDir") ? flags.checkpointDir : undefined;
  const every = use("checkpointEvery") ? flags.checkpointEvery : undefined;
  if (!base && dir === undefined && every === undefined) return {};
  return { checkpoint: { dir: dir ?? base?.dir ?? "", everySeconds: every ?? base?.everySeconds ?? 0 } };
}

/** --data name=source: typed mounts replace the file's `data:` list (one list, not merged by position). */
function dataFrom(
  flags: SpecFlags,
  base: DataMount[] | undefined,
  use: (flag: keyof SpecFlags) => boolean,
): { data?: DataMount[] } {
  const typed = use("data") && flags.data && Object.keys(flags.data).length > 0 ? flags.data : undefined;
  if (typed) return { data: Object.entries(typed).map(([name, source]) => ({ name, source, target: "" })) };
  return base?.length ? { data: base.map((d) => ({ ...d })) } : {};
}

/** --retries N [--retry-backoff D] [--retry-on LIST]: each typed part overrides the file's `retries`. */
function retriesFrom(
  flags: SpecFlags,
  base: RetryPolicy | undefined,
  use: (flag: keyof SpecFlags) => boolean,
): { retries?: RetryPolicy } {
  const typed = (flag: keyof SpecFlags) => use(flag) && flags[flag] !== undefined;
  if (!base && !typed("retries")) {
    if (typed("retryBackoff") || typed("retryOn"))
      throw new CliError("--retry-backoff and --retry-on need --retries N");
    return {};
  }
  return {
    retries: {
      max: typed("retries") ? flags.retries! : base!.max,
      backoffSeconds: typed("retryBackoff")
        ? flags.retryBackoff!
        : (base?.backoffSeconds ?? parseStrictDuration(DEFAULT_RETRY_BACKOFF)),
      on: typed("retryOn") ? ([...flags.retryOn!] as RetryOn[]) : [...(base?.on ?? DEFAULT_RETRY_ON)],
    },
  };
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

/** `--elastic 2:4`: min and max workers of an elastic training gang. */
export function parseElastic(value: string): ElasticPolicy {
  const m = /^\s*(\d+)\s*[:.-]{1,2}\s*(\d+)\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError("must be MIN:MAX workers, e.g. 2:4");
  return { min: Number(m[1]), max: Number(m[2]) };
}

/** Dollars ("2.49", "$2.49") → integer micros; never a float on the way. */
export function parseMoney(value: string): number {
  try {
    return parseUsd(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/**
 * The job's own durations (--duration, --kill-grace): `90m`, `2h`, `1h30m`, `45s` only, as in job files. A bare
 * number or `2 hours` is refused rather than guessed (`--duration 2 hours` once made `hours` the command).
 */
export function parseSpecDuration(value: string): number {
  try {
    return parseStrictDuration(value);
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

/** `--secret-file`: K=V per line, blank lines and `#` comments ignored; merged into `--secret`. */
export function collectSecretFile(path: string, previous: Record<string, string> = {}): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${path}: ${(err as Error).message}`);
  }
  return { ...previous, ...parseSecretFile(text, path) };
}

export function parseSecretFile(text: string, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const eq = trimmed.indexOf("=");
    if (eq <= 0) throw new InvalidArgumentError(`${path}:${i + 1}: expected NAME=VALUE`);
    out[trimmed.slice(0, eq).trim()] = trimmed.slice(eq + 1);
  });
  return out;
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
    .option("-f, --file <job.yaml>", "capa/v1 job file (YAML or JSON); flags given here override its values")
    .option("--name <name>", "job name (letters, digits, . _ -)")
    .addOption(new Option("--kind <kind>", "job kind").choices(JOB_KINDS as string[]).default("batch"))
    .option("--gpus <n>", "GPUs per replica, on one agent (0 = CPU-only)", parseInteger, 1)
    .option("--replicas <n>", "replicas (training: gang workers, all or nothing)", parseInteger, 1)
    .option(
      "--elastic <min:max>",
      "training: an elastic gang of MIN..MAX workers (starts at MIN, grows when capacity frees)",
      parseElastic,
    )
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
    .option("--duration <duration>", "expected run time: 90m, 2h, 1h30m (prices the job)", parseSpecDuration)
    .option("--demand <region=weight>", "inference: relative demand per region (repeatable)", collectDemand, {})
    .option("--selector <label=value>", "agent label that must match (repeatable)", collectKeyValue, {})
    .option("--allow-fabric-spanning", "training: the gang may span several NVLink domains")
    .option("--env <K=V>", "environment variable for the process (repeatable)", collectKeyValue, {})
    .option(
      "--secret <K=V>",
      "secret environment variable: delivered to the task, shown as *** and never logged (repeatable)",
      collectKeyValue,
    )
    .option(
      "--secret-file <file>",
      "secret environment variables from a file of K=V lines (# comments)",
      collectSecretFile,
    )
    .option("--workdir <dir>", "working directory of the process on the agent")
    .option("--image <image>", "run the command in this OCI image (agents with a container runtime)")
    .option("--kill-grace <duration>", "time between SIGTERM and SIGKILL on cancel: 10s, 2m", parseSpecDuration)
    .option("--retries <n>", "retry up to N more times (a training gang restarts as a whole)", parseInteger)
    .option("--retry-backoff <duration>", "wait before the first retry, doubling each time (10s)", parseSpecDuration)
    .option(
      "--retry-on <reasons>",
      `what starts a retry: ${RETRY_ON.join(", ")} (comma-separated; default failed)`,
      collectList,
    )
    .option("--checkpoint-dir <dir>", "the task writes checkpoints here ($CAPA_CHECKPOINT_DIR; default checkpoints)")
    .option(
      "--checkpoint-every <duration>",
      "how often the task should checkpoint: 5m ($CAPA_CHECKPOINT_EVERY_SECONDS)",
      parseSpecDuration,
    )
    .option(
      "--data <name=source>",
      "stage a host path or file:// URI before start: $CAPA_DATA_<NAME> (repeatable)",
      collectKeyValue,
    );
}
