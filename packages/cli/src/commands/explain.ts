import type * as api from "@capa/api";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { formatAge } from "../format.js";
import { renderExplanation } from "../render.js";

/** Why a service replica exists: the decision that added it and its region's latest scale events. */
export function renderReplicaContext(c: api.ReplicaContext, nowMs: number): string {
  const rev = c.revision === c.currentRevision ? `${c.revision}` : `${c.revision} (current ${c.currentRevision})`;
  const lines = [
    `service ${c.service}, region ${c.region}, revision ${rev}${c.removing ? ", being removed" : ""}`,
    `replica added by: ${c.cause || "(not recorded)"}`,
  ];
  if (c.events.length > 0) {
    lines.push("scale events (newest first):");
    for (const e of c.events)
      lines.push(
        `  ${formatAge(e.atMs, nowMs)}  ${e.region || "-"}  ${e.kind} ${e.fromReplicas}→${e.toReplicas}  ${e.reason}`,
      );
  }
  return lines.join("\n");
}

export function explainCommand(): Command {
  return jsonOption(
    new Command("explain").description(
      "why a job was placed where it is (or why it is pending): scores, rejections; for a service replica also the scale decisions behind it",
    ),
  )
    .argument("<job-id>")
    .action(async (jobId: string, flags: { json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { explanation, service } = await client.explainJob({ jobId });
        if (!explanation) throw new CliError(`the scheduler has no explanation for ${jobId}`);
        if (flags.json) printJson(service ? { ...explanation, service } : explanation);
        else
          print(
            service
              ? `${renderExplanation(explanation)}\n\n${renderReplicaContext(service, Date.now())}`
              : renderExplanation(explanation),
          );
      });
    });
}
