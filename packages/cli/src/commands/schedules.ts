/**
 * `capa schedules apply -f|list|get|history|trigger|delete`: recurring and triggered runs (ScheduleService).
 * A schedule comes from a capa/v1 file (`kind: Schedule`); `capa apply -f` takes the same documents.
 */
import * as api from "@capa/api";
import { scheduleSpecToPb } from "@capa/bus";
import type { ScheduleSpec } from "@capa/domain";
import { type CapaDocument, JobFileError, scheduleSpecFromDocument } from "@capa/jobfile";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { formatAge, renderFields, renderTable } from "../format.js";
import type { SchedulerClient } from "../grpc.js";
import { loadDocuments } from "../job-input.js";

/** The ScheduleSpec of a `kind: Schedule` document, as a CLI error naming the fields. */
export function scheduleSpecOf(doc: CapaDocument, source: string): ScheduleSpec {
  if (doc.kind !== "Schedule") throw new CliError(`${source}: kind: is ${doc.kind}, not Schedule`);
  try {
    return scheduleSpecFromDocument(doc, source);
  } catch (err) {
    if (err instanceof JobFileError) throw new CliError(err.message);
    throw err;
  }
}

/** Applies one schedule and prints `schedule/NAME created|configured|unchanged`. */
export async function applyScheduleSpec(client: SchedulerClient, spec: ScheduleSpec, json: boolean) {
  const { schedule, changed } = await client.applySchedule({
    tenant: client.options.tenant,
    spec: scheduleSpecToPb(spec),
  });
  if (!schedule) throw new CliError("the scheduler answered ApplySchedule without a schedule");
  const fresh = changed && schedule.createdAtMs === schedule.updatedAtMs;
  if (!json) print(`schedule/${spec.name} ${changed ? (fresh ? "created" : "configured") : "unchanged"}`);
  return { schedule: api.Schedule.toJSON(schedule), changed };
}

const lower = (text: string, prefix: string) => text.replace(prefix, "").toLowerCase();
const policyName = (p: api.ConcurrencyPolicy) =>
  lower(api.concurrencyPolicyToJSON(p), "CONCURRENCY_POLICY_").replace("unspecified", "forbid");
const outcomeName = (o: api.ScheduleRunOutcome) => lower(api.scheduleRunOutcomeToJSON(o), "SCHEDULE_RUN_OUTCOME_");
const causeName = (c: api.ScheduleRunCause) => lower(api.scheduleRunCauseToJSON(c), "SCHEDULE_RUN_CAUSE_");
const jobStateName = (s: api.JobState) =>
  s === api.JobState.JOB_STATE_UNSPECIFIED ? "-" : lower(api.jobStateToJSON(s), "JOB_STATE_");
const FINAL = new Set([
  api.JobState.JOB_STATE_SUCCEEDED,
  api.JobState.JOB_STATE_FAILED,
  api.JobState.JOB_STATE_CANCELLED,
]);
const isActiveRun = (r: api.ScheduleRun) =>
  r.outcome === api.ScheduleRunOutcome.SCHEDULE_RUN_OUTCOME_STARTED && !FINAL.has(r.jobState);
const when = (ms: number) => (ms > 0 ? new Date(ms).toISOString().replace(".000Z", "Z") : "-");

export function renderHistory(s: api.Schedule, nowMs: number): string {
  return renderTable(
    ["RUN", "CAUSE", "DUE", "OUTCOME", "JOB", "STATE", "TRIGGER", "REASON"],
    s.runs.map((r) => [
      r.runId,
      causeName(r.cause),
      formatAge(r.dueAtMs, nowMs),
      outcomeName(r.outcome),
      r.jobId || "-",
      jobStateName(r.jobState),
      r.triggerId,
      r.reason,
    ]),
  );
}

export function renderSchedule(s: api.Schedule, nowMs: number): string {
  const spec = s.spec!;
  const head = renderFields([
    ["schedule", s.name],
    ["cron", spec.cron ? `${spec.cron}${spec.timezone ? ` (${spec.timezone})` : " (UTC)"}` : "- (trigger only)"],
    ["concurrency", policyName(spec.concurrencyPolicy)],
    ["suspended", spec.suspend ? "yes" : "no"],
    ["next fire", when(s.nextFireAtMs)],
    ["last fire", when(s.lastFireAtMs)],
    ["pending triggers", s.pendingTriggers],
    ["job", (spec.job?.template?.command ?? []).join(" ")],
  ]);
  return s.runs.length ? `${head}\n\nruns (newest first):\n${renderHistory(s, nowMs)}` : head;
}

export function schedulesCommand(): Command {
  const cmd = new Command("schedules").description("recurring and triggered runs of a job (kind: Schedule)");
  const apply = jsonOption(
    new Command("apply")
      .description("create or update the schedules of a capa/v1 file (kind: Schedule documents)")
      .requiredOption("-f, --file <file.yaml>", "capa/v1 file (YAML or JSON; `-` = stdin)"),
  ).action(async (flags: { file: string; json?: boolean }, self: Command) => {
    const source = flags.file === "-" ? "stdin" : flags.file;
    const docs = loadDocuments(flags.file, true);
    const specs = docs.map((d, i) => scheduleSpecOf(d, docs.length > 1 ? `${source} (document ${i + 1})` : source));
    await withScheduler(self, async (client) => {
      const applied = [];
      for (const spec of specs) applied.push(await applyScheduleSpec(client, spec, !!flags.json));
      if (flags.json) printJson({ applied });
    });
  });
  const list = jsonOption(new Command("list").description("the tenant's schedules")).action(
    async (flags: { json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { schedules } = await client.listSchedules({ tenant: client.options.tenant, limit: 0, pageToken: "" });
        if (flags.json) printJson({ schedules: schedules.map((s) => api.Schedule.toJSON(s)) });
        else
          print(
            renderTable(
              ["NAME", "CRON", "CONCURRENCY", "SUSPENDED", "NEXT FIRE", "RUNS", "ACTIVE"],
              schedules.map((s) => [
                s.name,
                s.spec?.cron || "-",
                policyName(s.spec?.concurrencyPolicy ?? 0),
                s.spec?.suspend ? "yes" : "no",
                when(s.nextFireAtMs),
                s.runs.length,
                s.runs.filter(isActiveRun).length,
              ]),
            ),
          );
      });
    },
  );
  const getOne = async (self: Command, name: string) =>
    withScheduler(self, async (client) => {
      const { schedule } = await client.getSchedule({ tenant: client.options.tenant, name });
      if (!schedule) throw new CliError("the scheduler answered GetSchedule without a schedule");
      return schedule;
    });
  const get = jsonOption(new Command("get").description("a schedule: its spec, next fire time and runs"))
    .argument("<name>")
    .action(async (name: string, flags: { json?: boolean }, self: Command) => {
      const schedule = await getOne(self, name);
      if (flags.json) printJson(api.Schedule.toJSON(schedule));
      else print(renderSchedule(schedule, Date.now()));
    });
  const history = jsonOption(new Command("history").description("a schedule's runs, newest first"))
    .argument("<name>")
    .action(async (name: string, flags: { json?: boolean }, self: Command) => {
      const schedule = await getOne(self, name);
      if (flags.json) printJson({ runs: schedule.runs.map((r) => api.ScheduleRun.toJSON(r)) });
      else print(renderHistory(schedule, Date.now()));
    });
  const trigger = jsonOption(
    new Command("trigger")
      .description("start a run now (queued durably; the concurrency policy applies)")
      .argument("<name>")
      .option("--id <trigger-id>", "idempotency key: the same id is queued once")
      .option("--reason <text>", "why (shown in the history)"),
  ).action(async (name: string, flags: { id?: string; reason?: string; json?: boolean }, self: Command) => {
    await withScheduler(self, async (client) => {
      const res = await client.triggerSchedule({
        tenant: client.options.tenant,
        name,
        triggerId: flags.id ?? "",
        reason: flags.reason ?? "",
      });
      if (flags.json) printJson(api.TriggerScheduleResponse.toJSON(res));
      else
        print(
          `schedule/${name}: trigger ${res.triggerId} ${res.queued ? "queued" : "already known (not queued again)"}`,
        );
    });
  });
  const del = new Command("delete")
    .description("remove a schedule (jobs of its runs keep running)")
    .argument("<name>")
    .action(async (name: string, _flags: unknown, self: Command) => {
      await withScheduler(self, async (client) => {
        await client.deleteSchedule({ tenant: client.options.tenant, name });
        print(`schedule/${name} deleted`);
      });
    });
  return cmd.addCommand(apply).addCommand(list).addCommand(get).addCommand(history).addCommand(trigger).addCommand(del);
}
