import { createHash } from "node:crypto";
import { jobSpecToPb } from "@capa/bus";
import type { JobSpec } from "@capa/domain";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { jobSpecOf, loadDocuments } from "../job-input.js";
import { jobJson } from "../render.js";
import { applyScheduleSpec, scheduleSpecOf } from "./schedules.js";
import { applyServiceSpec, serviceSpecOf } from "./service.js";

/**
 * The request id of an applied Job: a digest of its spec, so applying the same file again is a no-op that
 * answers with the job it made the first time (the scheduler de-duplicates per tenant), and a changed file makes
 * a new job. Jobs are not edited in place.
 */
export function applyRequestId(spec: JobSpec): string {
  return `apply-${createHash("sha256").update(JSON.stringify(spec)).digest("hex").slice(0, 40)}`;
}

export function applyCommand(): Command {
  const cmd = new Command("apply")
    .description(
      "create what a capa/v1 file describes (Job, Schedule and Service documents); the same Job applied twice is one job, a Schedule or Service is created or updated by name",
    )
    .requiredOption("-f, --file <file.yaml>", "capa/v1 file (YAML or JSON; `-` = stdin), documents separated by ---");
  jsonOption(cmd).action(async (flags: { file: string; json?: boolean }, self: Command) => {
    const source = flags.file === "-" ? "stdin" : flags.file;
    const docs = loadDocuments(flags.file, true);
    // Every document is checked before anything is created, so a bad third document creates nothing.
    const items = docs.map((doc, i) => {
      const where = docs.length > 1 ? `${source} (document ${i + 1})` : source;
      if (doc.kind === "Schedule") return { kind: "Schedule" as const, spec: scheduleSpecOf(doc, where) };
      if (doc.kind === "Service") return { kind: "Service" as const, spec: serviceSpecOf(doc, where) };
      return { kind: "Job" as const, spec: jobSpecOf(doc, where, source) };
    });
    await withScheduler(self, async (client) => {
      const results = [];
      for (const item of items) {
        if (item.kind === "Schedule") {
          results.push(await applyScheduleSpec(client, item.spec, !!flags.json));
          continue;
        }
        if (item.kind === "Service") {
          const { name, revision, created, ...applied } = await applyServiceSpec(client, item.spec);
          results.push(applied);
          if (!flags.json)
            print(
              `service/${name} revision ${revision} ${applied.changed ? (created ? "created" : "configured") : "unchanged"}`,
            );
          continue;
        }
        const spec = item.spec;
        const { job, deduplicated } = await client.submitJob({
          requestId: applyRequestId(spec),
          tenant: client.options.tenant,
          spec: jobSpecToPb(spec),
        });
        if (!job) throw new CliError("the scheduler answered SubmitJob without a job");
        results.push({ job: jobJson(job), deduplicated });
        if (!flags.json) {
          const label = spec.name ? `job/${spec.name}` : "job";
          print(`${label} ${job.id} ${deduplicated ? "unchanged (applied before)" : "created"}`);
        }
      }
      if (flags.json) printJson({ applied: results });
    });
  });
  return cmd;
}
