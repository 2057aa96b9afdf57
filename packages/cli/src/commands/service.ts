/**
 * `capa service apply|get|list|delete` and `capa endpoints`: inference services (ServiceService). A spec comes
 * from a file (`-f`: a capa/v1 `kind: Service` document, or the ServiceSpec message in its JSON form) or from
 * flags; `capa apply -f` takes the same documents.
 */
import * as api from "@capa/api";
import { type CapaDocument, serviceSpecJsonFromDocument } from "@capa/jobfile";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { formatAge, formatPrice, renderFields, renderTable } from "../format.js";
import type { SchedulerClient } from "../grpc.js";
import { loadDocuments, readJobFile } from "../job-input.js";
import { collect, collectKeyValue, parseInteger, parseMoney, parseNumber } from "../spec.js";

interface ApplyFlags {
  file?: string;
  name?: string;
  region: string[];
  min?: number;
  max?: number;
  targetRps?: number;
  targetP95?: number;
  scaleUpWindow?: number;
  scaleDownWindow?: number;
  readinessPath?: string;
  readinessPeriod?: number;
  gpus?: number;
  gpuModel: string[];
  maxPrice?: number;
  budget?: number;
  modelVersion?: string;
  env: Record<string, string>;
  canary?: number;
  steps?: string;
  pause?: number;
  maxErrorRate?: number;
  minRequests?: number;
  driftMetric?: string;
  driftThreshold?: number;
  driftTrigger?: string;
  json?: boolean;
}

/** "eu-west", "eu-west=1..3" or "eu-west=1..3@50" (min..max, demand). */
export function parseRegionFlag(text: string): api.ServiceRegion {
  const m = /^([A-Za-z0-9_-]+)(?:=(\d+)(?:\.\.(\d+))?)?(?:@(\d+))?$/.exec(text.trim());
  if (!m) throw new CliError(`--region ${JSON.stringify(text)}: expected REGION[=MIN[..MAX]][@DEMAND]`);
  return {
    region: m[1]!,
    minReplicas: m[2] === undefined ? 0 : Number(m[2]),
    maxReplicas: m[3] === undefined ? (m[2] === undefined ? 0 : Number(m[2])) : Number(m[3]),
    demand: m[4] === undefined ? 0 : Number(m[4]),
  };
}

/** "50,100" → [50, 100]; "10%" and "10" are the same. */
export function parseSteps(text: string | undefined): number[] {
  if (!text) return [];
  return text.split(",").map((part) => {
    const n = Number(part.trim().replace(/%$/, ""));
    if (!Number.isInteger(n)) throw new CliError(`--steps ${JSON.stringify(text)}: expected percents such as 50,100`);
    return n;
  });
}

/** A `kind: Service` document as the ServiceSpec message. */
export function serviceSpecOf(doc: CapaDocument, source: string): api.ServiceSpec {
  if (doc.kind !== "Service") throw new CliError(`${source}: kind: is ${doc.kind}, not Service`);
  return api.ServiceSpec.fromJSON(serviceSpecJsonFromDocument(doc));
}

/**
 * `-f FILE`: a capa/v1 file (`kind: Service`, YAML or JSON), or — as before job files had the kind — a bare
 * ServiceSpec in its proto-JSON form (a JSON object without `apiVersion`).
 */
export function serviceSpecFromFile(path: string): api.ServiceSpec {
  const text = readJobFile(path);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (json && typeof json === "object" && !Array.isArray(json) && !("apiVersion" in json))
    return api.ServiceSpec.fromJSON(json);
  const source = path === "-" ? "stdin" : path;
  const docs = loadDocuments(path, false);
  return serviceSpecOf(docs[0]!, source);
}

export function specFromServiceFlags(flags: ApplyFlags, command: string[]): api.ServiceSpec {
  if (flags.file) {
    if (command.length > 0) throw new CliError("give either -f FILE or a command after --, not both");
    return serviceSpecFromFile(flags.file);
  }
  if (!flags.name) throw new CliError("service apply needs --name (or -f FILE)");
  if (command.length === 0) throw new CliError("service apply needs the replica's command after --");
  return api.ServiceSpec.fromPartial({
    name: flags.name,
    template: { command, env: flags.env, workingDir: "", killGraceSeconds: 5 },
    readiness: { httpPath: flags.readinessPath ?? "", periodMs: flags.readinessPeriod ?? 0 },
    regions: flags.region.map(parseRegionFlag),
    minReplicas: flags.min ?? 0,
    maxReplicas: flags.max ?? 0,
    target: {
      requestsPerSecondPerReplica: flags.targetRps ?? 0,
      p95LatencyMs: flags.targetP95 ?? 0,
      scaleUpWindowMs: (flags.scaleUpWindow ?? 0) * 1000,
      scaleDownWindowMs: (flags.scaleDownWindow ?? 0) * 1000,
    },
    gpusPerReplica: flags.gpus ?? 0,
    gpuModels: flags.gpuModel,
    maxPriceMicrosPerGpuHour: flags.maxPrice ?? 0,
    budgetMicros: flags.budget ?? 0,
    modelVersion: flags.modelVersion ?? "",
    rollout: {
      canaryPercent: flags.canary ?? 0,
      steps: parseSteps(flags.steps),
      pauseMs: (flags.pause ?? 0) * 1000,
      maxErrorRate: flags.maxErrorRate ?? 0,
      minRequests: flags.minRequests ?? 0,
      readyTimeoutMs: 0,
    },
    drift: { metric: flags.driftMetric ?? "", threshold: flags.driftThreshold ?? 0, trigger: flags.driftTrigger ?? "" },
  });
}

/** ApplyService, answered as JSON (`service`, `changed`) plus the name and revision for a one-line summary. */
export async function applyServiceSpec(client: SchedulerClient, spec: api.ServiceSpec) {
  const { service, changed } = await client.applyService({ tenant: client.options.tenant, spec });
  if (!service) throw new CliError("the scheduler answered ApplyService without a service");
  const created = changed && service.createdAtMs === service.updatedAtMs;
  return { service: api.Service.toJSON(service), changed, name: service.name, revision: service.revision, created };
}

const stateName = (s: api.ServiceState) => api.serviceStateToJSON(s).replace("SERVICE_STATE_", "").toLowerCase();
const taskState = (s: api.TaskState) => api.taskStateToJSON(s).replace("TASK_STATE_", "").toLowerCase();

export function renderService(s: api.Service, nowMs: number): string {
  const head = renderFields([
    ["service", s.name],
    ["state", stateName(s.state)],
    ["revision", `${s.revision}${s.spec?.modelVersion ? ` (model ${s.spec.modelVersion})` : ""}`],
    ["spent", `$${(s.spentMicros / 1e6).toFixed(6)}`],
  ]);
  const regions = renderTable(
    ["REGION", "DESIRED", "READY", "REQ/S", "P95 MS"],
    s.regions.map((r) => [r.region, r.desired, r.ready, r.requestsPerSecond.toFixed(1), r.p95LatencyMs]),
    { rightAlign: [1, 2, 3, 4] },
  );
  const replicas = renderTable(
    ["JOB", "REGION", "AGENT", "STATE", "READY", "ENDPOINT", "$/GPU-H", "REV", "REQ/S"],
    s.replicas.map((r) => [
      r.jobId || "(submitting)",
      r.region,
      r.agentId || "-",
      taskState(r.taskState),
      r.ready ? "yes" : "no",
      r.port ? `${r.host}:${r.port}` : "-",
      formatPrice(r.priceMicrosPerGpuHour),
      r.revision,
      r.requestsPerSecond.toFixed(1),
    ]),
  );
  const events = s.events
    .slice(0, 10)
    .map(
      (e) =>
        `${formatAge(e.atMs, nowMs)}  ${e.region || "-"}  ${e.kind} ${e.fromReplicas}→${e.toReplicas}  ${e.reason}`,
    );
  return [head, "", regions, "", replicas, ...(events.length ? ["", "events:", ...events] : [])].join("\n");
}

export function serviceCommand(): Command {
  const cmd = new Command("service").description("inference services: replicas in regions behind capa gateway");
  const apply = new Command("apply")
    .description("create a service or roll out a new revision of it (from -f FILE or flags and -- CMD ARGS)")
    .argument("[command...]", "each replica's program and arguments, after --; it must listen on $PORT")
    .option("-f, --file <file>", "a capa/v1 file with kind: Service (YAML or JSON), or a ServiceSpec as JSON")
    .option("--name <name>", "service name (lower-case letters, digits, '-')")
    .option("--region <region[=min[..max]][@demand]>", "a region it serves (repeatable)", collect, [])
    .option("--min <n>", "minimum replicas per region (default 0)", parseInteger)
    .option("--max <n>", "maximum replicas per region (default 1)", parseInteger)
    .option("--target-rps <n>", "autoscale to this many requests/s per replica", parseNumber)
    .option("--target-p95 <ms>", "autoscale to keep p95 latency under this", parseInteger)
    .option("--scale-up-window <s>", "seconds a higher count must hold before scaling up (5)", parseInteger)
    .option("--scale-down-window <s>", "seconds of lower recommendations before scaling down (30)", parseInteger)
    .option("--readiness-path <path>", "HTTP path probed for readiness (default: TCP connect)")
    .option("--readiness-period <ms>", "probe period in ms (1000)", parseInteger)
    .option("--gpus <n>", "GPUs per replica (default 0)", parseInteger)
    .option("--gpu-model <model>", "accepted GPU model (repeatable)", collect, [])
    .option("--max-price <usd>", "highest price per GPU-hour", parseMoney)
    .option("--budget <usd>", "total spend of all replicas; the service scales to 0 once reached", parseMoney)
    .option("--model-version <v>", "the model version this revision serves (provenance)")
    .option("--env <k=v>", "environment variable (repeatable)", collectKeyValue, {})
    .option(
      "--canary <percent>",
      "roll new revisions out region by region, this share first (0 = all at once)",
      parseInteger,
    )
    .option("--steps <percents>", "further traffic steps after the canary, e.g. 50,100 (default 100)")
    .option("--pause <s>", "seconds each step must hold (30)", parseInteger)
    .option("--max-error-rate <r>", "highest error rate of the new revision, 0..1 (0.05)", parseNumber)
    .option("--min-requests <n>", "requests before the error rate can fail a step (20)", parseInteger)
    .option("--drift-metric <name>", "model metric (CAPA_METRICS lines) watched for drift, e.g. drift_score")
    .option("--drift-threshold <x>", "fire the retraining trigger once when the metric goes above this", parseNumber)
    .option(
      "--drift-trigger <schedule>",
      "the Schedule to trigger (one run per revision); also carried in the message",
    );
  jsonOption(apply).action(async (command: string[], flags: ApplyFlags, self: Command) => {
    const spec = specFromServiceFlags(flags, command);
    await withScheduler(self, async (client) => {
      const applied = await applyServiceSpec(client, spec);
      if (flags.json) printJson(applied);
      else print(`service ${applied.name}: revision ${applied.revision}${applied.changed ? "" : " (unchanged)"}`);
    });
  });
  const get = jsonOption(new Command("get").description("a service: regions, replicas, endpoints, events"))
    .argument("<name>")
    .action(async (name: string, flags: { json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { service } = await client.getService({ tenant: client.options.tenant, name });
        if (!service) throw new CliError(`the scheduler answered GetService without a service`);
        if (flags.json) printJson(api.Service.toJSON(service));
        else print(renderService(service, Date.now()));
      });
    });
  const list = jsonOption(new Command("list").description("the tenant's services")).action(
    async (flags: { json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { services } = await client.listServices({ tenant: client.options.tenant, limit: 0, pageToken: "" });
        if (flags.json) printJson({ services: services.map((s) => api.Service.toJSON(s)) });
        else
          print(
            renderTable(
              ["NAME", "STATE", "REVISION", "REGIONS", "READY"],
              services.map((s) => [
                s.name,
                stateName(s.state),
                s.revision,
                s.regions.map((r) => r.region).join(","),
                `${s.regions.reduce((n, r) => n + r.ready, 0)}/${s.regions.reduce((n, r) => n + r.desired, 0)}`,
              ]),
            ),
          );
      });
    },
  );
  const del = jsonOption(new Command("delete").description("scale a service to 0 and remove it"))
    .argument("<name>")
    .action(async (name: string, flags: { json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { service } = await client.deleteService({ tenant: client.options.tenant, name });
        if (flags.json && service) printJson(api.Service.toJSON(service));
        else print(`service ${name}: deleting`);
      });
    });
  return cmd.addCommand(apply).addCommand(get).addCommand(list).addCommand(del);
}

export function endpointsCommand(): Command {
  return jsonOption(new Command("endpoints").description("a service's ready replicas (its live endpoint set)"))
    .argument("<service>")
    .option("--region <region>", "only this region")
    .action(async (name: string, flags: { region?: string; json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const res = await client.listEndpoints({
          tenant: client.options.tenant,
          name,
          region: flags.region ?? "",
          limit: 0,
          pageToken: "",
        });
        if (flags.json) printJson(api.ListEndpointsResponse.toJSON(res));
        else
          print(
            renderTable(
              ["REGION", "ENDPOINT", "TASK", "AGENT", "REV", "TRAFFIC"],
              res.endpoints.map((e) => [
                e.region,
                `${e.host}:${e.port}`,
                e.taskId,
                e.agentId,
                e.revision,
                `${e.trafficPercent}%`,
              ]),
            ),
          );
      });
    });
}
