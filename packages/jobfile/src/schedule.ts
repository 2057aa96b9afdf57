/**
 * A validated Schedule document → the domain ScheduleSpec. Its `spec.job` is a Job's spec and goes through the
 * Job conversion (so a schedule's job is refused exactly as the same job submitted would be), with its issues
 * reported under `spec.job.…`; the cron expression and time zone are checked with the same parser the scheduler
 * fires with.
 */
import { SCHEDULE_LIMITS, type ScheduleSpec, scheduleSpecViolations } from "@capa/domain";
import { JobFileError, type JobFileIssue } from "./parse.js";
import { API_VERSION, type ScheduleDocument } from "./schema.js";
import { jobSpecFromDocument } from "./spec.js";

const FILE_PATH: Readonly<Record<string, string>> = {
  "spec.name": "metadata.name",
  "spec.cron": "spec.cron",
  "spec.timezone": "spec.timezone",
  "spec.concurrency_policy": "spec.concurrency",
  "spec.history_limit": "spec.historyLimit",
};

export function scheduleSpecFromDocument(doc: ScheduleDocument, source = "job file"): ScheduleSpec {
  const s = doc.spec;
  const issues: JobFileIssue[] = [];
  let job: ScheduleSpec["job"] | undefined;
  try {
    job = jobSpecFromDocument({ apiVersion: API_VERSION, kind: "Job", spec: s.job }, source);
  } catch (err) {
    if (!(err instanceof JobFileError)) throw err;
    for (const i of err.issues)
      issues.push({
        path: i.path.startsWith("spec.") ? `spec.job.${i.path.slice(5)}` : `spec.job.${i.path}`,
        message: i.message,
      });
  }
  const spec: ScheduleSpec = {
    name: doc.metadata.name,
    cron: (s.cron ?? "").trim(),
    timezone: s.timezone ?? "",
    concurrency: s.concurrency ?? "forbid",
    historyLimit: s.historyLimit ?? SCHEDULE_LIMITS.defaultHistory,
    suspend: s.suspend ?? false,
    job: job ?? jobSpecFromDocument({ apiVersion: API_VERSION, kind: "Job", spec: { command: ["-"] } }),
  };
  for (const v of scheduleSpecViolations(spec))
    if (FILE_PATH[v.field]) issues.push({ path: FILE_PATH[v.field]!, message: v.message });
  if (issues.length > 0) throw new JobFileError(source, issues);
  return spec;
}
