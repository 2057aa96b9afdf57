/**
 * The provenance part of `capa get JOB`: what ran (image and its digest, command), on which data, and the
 * checkpoint lineage — the newest checkpoint of each task, and which run resumed from which checkpoint of which
 * run (and task: a training gang's workers all resume from the gang's checkpoint, one rank's). Kept apart from
 * render.ts so the job detail stays one list of fields.
 */
import { formatBytes, type Job } from "@capa/domain";
import { formatDuration, renderFields, renderTable } from "./format.js";

export function renderProvenance(job: Job): string {
  const s = job.spec;
  const fields: [string, string][] = [];
  if (s.template.image) {
    const digests = [...new Set(job.tasks.map((t) => t.imageDigest).filter(Boolean))];
    fields.push(["image", `${s.template.image}${digests.length > 0 ? ` (${digests.join(", ")})` : ""}`]);
  }
  for (const d of s.data ?? []) fields.push([`data ${d.name}`, `${d.source}${d.target ? ` -> ${d.target}` : ""}`]);
  if (s.checkpoint) {
    const every = s.checkpoint.everySeconds > 0 ? `, every ${formatDuration(s.checkpoint.everySeconds)}` : "";
    fields.push(["checkpoints", `${s.checkpoint.dir || "checkpoints"}${every}`]);
  }
  for (const t of job.tasks) {
    const c = t.checkpoint;
    if (c) {
      const copy = c.copy === "stored" ? "stored" : `${c.copy}${c.copyNote ? `: ${c.copyNote}` : ""}`;
      fields.push([
        `checkpoint ${t.id}`,
        `${c.name} (${formatBytes(c.sizeBytes)}, attempt ${c.attempt}, ${c.agentId}, ${new Date(c.createdAtMs).toISOString()}; ${copy})`,
      ]);
    }
    if (t.resumeNote) fields.push([`fresh start ${t.id}`, t.resumeNote]);
  }
  const lineage = job.lineage ?? [];
  const parts: string[] = [];
  if (fields.length > 0) parts.push(renderFields(fields));
  if (lineage.length > 0) {
    const rows = lineage.map((l) => [
      l.taskId,
      `${l.attempt}`,
      `${l.epoch}`,
      l.agentId,
      l.resumedFrom.name,
      l.resumedFrom.taskId, // a training gang's worker resumes from the gang's checkpoint: maybe another rank's
      `${l.resumedFrom.attempt}`,
      `${l.resumedFrom.epoch}`,
      l.resumedFrom.agentId,
    ]);
    parts.push(
      renderTable(["TASK", "ATTEMPT", "EPOCH", "AGENT", "RESUMED FROM", "OF TASK", "ATTEMPT", "EPOCH", "AGENT"], rows),
    );
  }
  return parts.length > 0 ? `\n\n${parts.join("\n\n")}` : "";
}
