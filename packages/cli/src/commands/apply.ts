import { createHash } from "node:crypto";
import { jobSpecToPb } from "@capa/bus";
import type { JobSpec } from "@capa/domain";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { jobSpecOf, loadDocuments } from "../job-input.js";
import { jobJson } from "../render.js";

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
    .description("create what a capa/v1 file describes (one or more documents); the same Job applied twice is one job")
    .requiredOption("-f, --file <file.yaml>", "capa/v1 file (YAML or JSON; `-` = stdin), documents separated by ---");
  jsonOption(cmd).action(async (flags: { file: string; json?: boolean }, self: Command) => {
    const source = flags.file === "-" ? "stdin" : flags.file;
    const docs = loadDocuments(flags.file, true);
    // Every document is checked before anything is created, so a bad third document creates nothing.
    const specs = docs.map((doc, i) =>
      jobSpecOf(doc, docs.length > 1 ? `${source} (document ${i + 1})` : source, source),
    );
    await withScheduler(self, async (client) => {
      const results = [];
      for (const spec of specs) {
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
