/**
 * The job file schema, `apiVersion: capa/v1`: one zod schema per `kind`, registered in KINDS. The zod schemas
 * are the source of truth; the JSON Schema in ../schema/capa-v1.schema.json is exported from them (a test keeps
 * it in step), so editors and CI can validate job files without capa. A new kind (e.g. `Service`) is one more
 * schema and one more KINDS entry.
 *
 * The schema checks shape and syntax (types, names, durations, dollar amounts, ranges); the scheduler's
 * validator stays the authority on what it accepts, and its wire-named violations are mapped back to file
 * paths (see spec.ts).
 */
import { CONCURRENCY_POLICIES, LIMITS, RETRY_ON, type RetryOn, SCHEDULE_LIMITS } from "@capa/domain";
import { z } from "zod";

export const API_VERSION = "capa/v1";

const TOKEN = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Same grammar as parseDuration: h, m, s in order, whole numbers. */
export const DURATION_PATTERN = /^(?=\d)(?:\d+h)?(?:\d+m)?(?:\d+s)?$/;
const DOLLARS = /^\$?\d+(?:\.\d{1,6})?$/;

const token = z.string().regex(TOKEN, "must be a name of letters, digits and . _ : - (not starting with one of those)");
const tokenList = z.union([token, z.array(token).max(LIMITS.maxListItems)]).describe("one name or a list of names");
const DURATION_ERROR = "must be a duration such as 90m, 2h, 1h30m or 45s";
const duration = z
  .string({ error: DURATION_ERROR })
  .regex(DURATION_PATTERN, DURATION_ERROR)
  .describe("hours, minutes, seconds: 90m, 2h, 1h30m, 45s");
const dollars = z
  .union([
    z
      .number()
      .min(0, { error: "must not be negative" })
      .refine((n) => n < 0 || DOLLARS.test(String(n)), { error: "must be a dollar amount with at most 6 decimals" })
      .describe("US dollars"),
    z.string().regex(DOLLARS, 'must be a dollar amount such as 2.49 or "$2.49" (at most 6 decimals)'),
  ])
  .describe('US dollars, at most 6 decimals: 2.49 or "$2.49"');
const int = (min: number, max: number) => {
  const error = `must be an integer in ${min}..${max}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
};

export const metadataSchema = z.strictObject({
  name: z
    .string()
    .max(LIMITS.maxNameLength)
    .regex(NAME, "must be letters, digits and . _ - (not starting with . _ -)")
    .describe("job name, shown by capa jobs"),
});

export const resourcesSchema = z
  .strictObject({
    gpus: int(0, LIMITS.maxGpusPerReplica)
      .optional()
      .describe("GPUs per replica, on one agent (0 = CPU-only); default 1"),
    gpuModels: tokenList.optional().describe("accepted GPU models, e.g. H100-80GB; default any"),
    minVramGiB: z
      .number({ error: "must be a number of GiB" })
      .min(0, { error: "must be at least 0" })
      .max(LIMITS.maxVramMib / 1024, { error: `must be at most ${LIMITS.maxVramMib / 1024}` })
      .optional()
      .describe("minimum GPU memory in GiB"),
  })
  .describe("what each replica needs");

export const jobSpecSchema = z.strictObject({
  kind: z
    .enum(["training", "inference", "batch"])
    .optional()
    .describe("training (gang), inference or batch; default batch"),
  replicas: int(1, LIMITS.maxReplicas)
    .optional()
    .describe("replicas; training: gang workers, all or nothing; default 1 (elastic: elastic.max)"),
  elastic: z
    .strictObject({
      min: int(1, LIMITS.maxReplicas).describe("fewest workers the gang runs with (it starts once these fit)"),
      max: int(1, LIMITS.maxReplicas).describe("most workers; the gang grows toward it as capacity frees"),
    })
    .refine((e) => e.min <= e.max, { error: "min must not be above max", path: ["min"] })
    .optional()
    .describe(
      "training: an elastic gang of min..max workers; it grows when capacity frees, shrinks on loss instead of failing",
    ),
  resources: resourcesSchema.optional(),
  regions: tokenList.optional().describe("allowed regions; default any"),
  excludeRegions: tokenList.optional().describe("regions to avoid"),
  dataRegion: token.optional().describe("where the job's data lives (placing elsewhere costs egress)"),
  residency: token.optional().describe("every replica runs in this residency zone, e.g. eu"),
  maxPrice: dollars.optional().describe("highest price per GPU-hour, in dollars"),
  budget: dollars.optional().describe("total spend cap for the job, in dollars"),
  priority: int(-LIMITS.maxPriority, LIMITS.maxPriority).optional().describe("higher first; default 0"),
  interruptible: z
    .boolean({ error: "must be true or false" })
    .optional()
    .describe("may run on cheaper interruptible capacity and be preempted"),
  duration: duration.optional().describe("expected run time (prices the job)"),
  demand: z.record(token, int(0, 1_000_000_000)).optional().describe("inference: relative demand per region"),
  selector: z.record(token, z.string().max(LIMITS.maxShortString)).optional().describe("agent labels that must match"),
  allowFabricSpanning: z
    .boolean({ error: "must be true or false" })
    .optional()
    .describe("training: the gang may span several NVLink domains"),
  command: z
    .array(z.string({ error: "must be a string (quote numbers)" }).max(LIMITS.maxCommandArgLength), {
      error: "must be a list: [program, args...]",
    })
    .min(1, { error: "must not be empty" })
    .max(LIMITS.maxCommandArgs, { error: `must have at most ${LIMITS.maxCommandArgs} arguments` })
    .describe("argv of each replica: [program, args...]; no shell unless you run one"),
  env: z
    .record(
      z.string().regex(ENV_NAME, "must be an environment variable name"),
      z.string({ error: "must be a string (quote numbers and booleans)" }).max(LIMITS.maxEnvValueLength),
    )
    .optional()
    .describe("environment variables of the process"),
  workdir: z.string().max(LIMITS.maxWorkingDirLength).optional().describe("working directory on the agent"),
  image: z
    .string()
    .max(LIMITS.maxImageLength)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$/, "must be an image reference such as registry/name:tag")
    .optional()
    .describe("OCI image the command runs in (the agent's container driver); default: a host process"),
  killGrace: duration.optional().describe("time between SIGTERM and SIGKILL on cancel or preemption; default 10s"),
  retries: z
    .strictObject({
      max: int(0, LIMITS.maxRetries).describe("further attempts after the first"),
      backoff: duration
        .optional()
        .describe("wait before the first retry, doubling for each next one (max 10m); default 10s"),
      on: z
        .array(z.enum(RETRY_ON as [RetryOn, ...RetryOn[]]))
        .min(1, { error: "must name at least one of failed, lost, preempted" })
        .max(RETRY_ON.length)
        .optional()
        .describe("what starts a retry: failed, lost, preempted; default [failed]"),
    })
    .optional()
    .describe("retry policy: every attempt is recorded; a training gang restarts as a whole"),
  checkpoint: z
    .strictObject({
      dir: z
        .string()
        .max(LIMITS.maxWorkingDirLength)
        .optional()
        .describe(
          "where the task writes checkpoints ($CAPA_CHECKPOINT_DIR): relative to its task dir, or absolute; default checkpoints",
        ),
      every: duration.optional().describe("how often the task should checkpoint ($CAPA_CHECKPOINT_EVERY_SECONDS)"),
    })
    .optional()
    .describe(
      "checkpoints: a complete one is an entry of $CAPA_CHECKPOINT_DIR published by atomic rename (dot-names are in progress); a re-placed, preempted or retried task starts with $CAPA_RESUME_FROM",
    ),
  data: z
    .array(
      z.strictObject({
        name: z
          .string()
          .max(64)
          .regex(/^[a-z0-9][a-z0-9_-]*$/, "must be lower-case letters, digits, _ and -")
          .describe("the task finds the staged data at $CAPA_DATA_<NAME>"),
        source: z
          .string()
          .min(1, { error: "must not be empty" })
          .max(LIMITS.maxWorkingDirLength)
          .describe("a host path (/datasets/x) or a URI (file:///datasets/x)"),
        target: z
          .string()
          .max(LIMITS.maxWorkingDirLength)
          .optional()
          .describe("path in a container; default /data/<name>"),
      }),
    )
    .max(LIMITS.maxDataMounts)
    .optional()
    .describe("inputs the agent stages before the task starts"),
  secrets: z
    .record(
      z.string().regex(ENV_NAME, "must be an environment variable name"),
      z.union([
        z.strictObject({ env: z.string().regex(ENV_NAME, "must be an environment variable name") }),
        z.strictObject({ file: z.string().min(1).max(LIMITS.maxWorkingDirLength) }),
      ]),
    )
    .optional()
    .describe(
      "secret env of the task, read at submit from the submitter's environment ({env: NAME}) or a file ({file: path}); masked like --secret",
    ),
});

export const jobDocumentSchema = z
  .strictObject({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal("Job"),
    metadata: metadataSchema.optional(),
    spec: jobSpecSchema,
  })
  .describe("a job: submitted once with capa submit -f or capa apply -f");

const scheduleName = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$/, "must be 1-48 lower-case letters, digits or '-', not at either end");

export const scheduleSpecSchema = z.strictObject({
  cron: z
    .string({ error: "must be a cron expression (quote it)" })
    .max(SCHEDULE_LIMITS.maxCronLength)
    .optional()
    .describe("cron expression: 5 fields (minute first), 6 (seconds first) or @hourly/@daily; omitted = trigger only"),
  timezone: z
    .string()
    .max(64)
    .optional()
    .describe("IANA time zone the cron is read in, e.g. Europe/Berlin; default UTC"),
  concurrency: z
    .enum(CONCURRENCY_POLICIES)
    .optional()
    .describe(
      "a run due while one is active: forbid (skip it), replace (cancel the active one) or allow; default forbid",
    ),
  historyLimit: int(1, SCHEDULE_LIMITS.maxHistory)
    .optional()
    .describe(`runs kept in the history; default ${SCHEDULE_LIMITS.defaultHistory}`),
  suspend: z
    .boolean({ error: "must be true or false" })
    .optional()
    .describe("the cron does not fire (triggers still do)"),
  job: jobSpecSchema.describe("the job each run submits: every field of a Job's spec"),
});

export const scheduleDocumentSchema = z
  .strictObject({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal("Schedule"),
    metadata: z.strictObject({ name: scheduleName.describe("schedule name, unique per tenant") }),
    spec: scheduleSpecSchema,
  })
  .describe("recurring or triggered runs of a job: capa apply -f, capa schedules");

/** Durations of a service's probes and windows: the job durations, or whole milliseconds (`500ms`). */
export const MS_DURATION_PATTERN = /^(?:\d+ms|(?=\d)(?:\d+h)?(?:\d+m)?(?:\d+s)?)$/;
const MS_DURATION_ERROR = "must be a duration such as 500ms, 30s, 2m or 1h30m";
const msDuration = z
  .string({ error: MS_DURATION_ERROR })
  .regex(MS_DURATION_PATTERN, MS_DURATION_ERROR)
  .describe("500ms, 30s, 2m, 1h30m");

export const serviceSpecSchema = z.strictObject({
  command: jobSpecSchema.shape.command.describe("argv of each replica; it must listen on $PORT (the agent assigns it)"),
  env: jobSpecSchema.shape.env,
  workdir: jobSpecSchema.shape.workdir,
  image: jobSpecSchema.shape.image,
  killGrace: jobSpecSchema.shape.killGrace,
  modelVersion: z.string().max(128).optional().describe("the model version this revision serves (provenance)"),
  resources: z
    .strictObject({
      gpus: int(0, LIMITS.maxGpusPerReplica).optional().describe("GPUs per replica; default 0"),
      gpuModels: tokenList.optional().describe("accepted GPU models; default any"),
    })
    .optional(),
  maxPrice: dollars.optional().describe("highest price per GPU-hour, in dollars"),
  budget: dollars.optional().describe("total spend of all replicas; the service scales to 0 once reached"),
  readiness: z
    .strictObject({
      httpPath: z.string().max(256).optional().describe("HTTP path answering 2xx when ready; default: a TCP connect"),
      period: msDuration.optional().describe("between probes; default 1s"),
      failureThreshold: int(1, 100).optional().describe("failures before not ready; default 2"),
    })
    .optional(),
  replicas: z
    .strictObject({
      min: int(0, 64).optional().describe("per region, default 0"),
      max: int(1, 64).optional().describe("per region, default 1"),
    })
    .optional()
    .describe("defaults for every region"),
  regions: z
    .array(
      z.strictObject({
        region: token,
        min: int(0, 64).optional(),
        max: int(1, 64).optional(),
        demand: int(0, 1_000_000_000).optional().describe("client demand from the region (informs placement)"),
      }),
      { error: "must be a list of {region, min, max, demand}" },
    )
    .min(1, { error: "must name at least one region" })
    .max(16)
    .describe("the regions served, in rollout order"),
  target: z
    .strictObject({
      requestsPerSecond: z.number().min(0).optional().describe("per replica"),
      p95Latency: msDuration.optional(),
      scaleUpWindow: msDuration.optional().describe("default 5s"),
      scaleDownWindow: msDuration.optional().describe("default 30s"),
    })
    .optional()
    .describe("autoscaling target; none = fixed at min"),
  rollout: z
    .strictObject({
      canary: int(0, 100).optional().describe("percent of the first step; 0 = replace at once"),
      steps: z.array(int(1, 100)).max(10).optional().describe("further percents, ending at 100"),
      pause: msDuration.optional().describe("each step holds this long; default 30s"),
      maxErrorRate: z.number().min(0).max(1).optional().describe("default 0.05"),
      minRequests: int(0, 1_000_000).optional().describe("default 20"),
      readyTimeout: msDuration.optional().describe("default 2m"),
    })
    .optional(),
  drift: z
    .strictObject({
      metric: z.string().max(64).describe("a CAPA_METRICS name, e.g. drift_score"),
      threshold: z.number(),
      schedule: z.string().max(256).optional().describe("the Schedule to trigger once per revision"),
    })
    .optional(),
});

export const serviceDocumentSchema = z
  .strictObject({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal("Service"),
    metadata: z.strictObject({ name: scheduleName.describe("service name, unique per tenant") }),
    spec: serviceSpecSchema,
  })
  .describe("an inference service: capa apply -f, capa service apply -f");

/** Every kind a capa/v1 document may have; each entry is the schema of a whole document of that kind. */
export const KINDS = {
  Job: jobDocumentSchema,
  Schedule: scheduleDocumentSchema,
  Service: serviceDocumentSchema,
} as const;

export type DocumentKind = keyof typeof KINDS;
export type JobDocument = z.infer<typeof jobDocumentSchema>;
export type JobFileSpec = z.infer<typeof jobSpecSchema>;
export type ScheduleDocument = z.infer<typeof scheduleDocumentSchema>;
export type ServiceDocument = z.infer<typeof serviceDocumentSchema>;
export type CapaDocument = JobDocument | ScheduleDocument | ServiceDocument;

/** All kinds as one schema (a union on `kind`), for the published JSON Schema. */
export const documentSchema = z.discriminatedUnion(
  "kind",
  Object.values(KINDS) as unknown as [
    typeof jobDocumentSchema,
    typeof scheduleDocumentSchema,
    typeof serviceDocumentSchema,
  ],
);

/** The JSON Schema (draft 2020-12) of a capa/v1 document, as committed in schema/capa-v1.schema.json. */
export function jsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(documentSchema, { io: "input", target: "draft-2020-12" }) as Record<string, unknown>;
  return {
    $schema: schema.$schema,
    $id: "urn:capa:schema:capa-v1",
    title: "capa/v1 document (job file)",
    ...schema,
  };
}
