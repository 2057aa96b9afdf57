/** `capa rollout status|promote|abort SERVICE`: a service's rollout of a new revision, region by region. */
import * as api from "@capa/api";
import { Command } from "commander";
import { jsonOption, print, printJson, withScheduler } from "../context.js";
import { CliError } from "../errors.js";
import { formatAge, renderFields, renderTable } from "../format.js";

const phaseName = (p: api.RolloutPhase) => api.rolloutPhaseToJSON(p).replace("ROLLOUT_PHASE_", "").toLowerCase();

export function renderRollout(s: api.Service, nowMs: number): string {
  const ro = s.rollout;
  if (!ro) return `service ${s.name}: no rollout (revision ${s.revision})`;
  const fields = renderFields([
    ["service", s.name],
    ["rollout", `revision ${ro.revision} from ${ro.fromRevision}: ${phaseName(ro.phase)}`],
    ...(ro.phase === api.RolloutPhase.ROLLOUT_PHASE_PROGRESSING
      ? ([
          ["region", `${ro.region} at ${ro.percent}% (step began ${formatAge(ro.stepStartedAtMs, nowMs)})`],
          ["step", `${ro.stepErrors} errors / ${ro.stepRequests} requests to the new revision`],
        ] as [string, string][])
      : []),
    ["done", ro.doneRegions.join(", ") || "-"],
    ["reason", ro.reason],
    ...(ro.phase === api.RolloutPhase.ROLLOUT_PHASE_PROGRESSING
      ? []
      : ([["serving", `revision ${s.revision}`]] as [string, string][])),
  ]);
  const revisions = renderTable(
    ["REVISION", "MODEL", "STATUS", "DIGEST", "CREATED"],
    s.revisions.map((r) => [
      r.revision,
      r.modelVersion || "-",
      r.status,
      r.templateDigest.slice(0, 12),
      formatAge(r.createdAtMs, nowMs),
    ]),
  );
  return `${fields}\n\n${revisions}`;
}

export function rolloutCommand(): Command {
  const cmd = new Command("rollout").description("a service's rollout: canary first, region by region");
  const status = jsonOption(new Command("status").description("where the rollout is, and the revisions kept"))
    .argument("<service>")
    .action(async (name: string, flags: { json?: boolean }, self: Command) => {
      await withScheduler(self, async (client) => {
        const { service } = await client.getService({ tenant: client.options.tenant, name });
        if (!service) throw new CliError("the scheduler answered GetService without a service");
        if (flags.json)
          printJson({
            rollout: service.rollout ? api.RolloutStatus.toJSON(service.rollout) : null,
            revisions: service.revisions.map((r) => api.ServiceRevision.toJSON(r)),
          });
        else print(renderRollout(service, Date.now()));
      });
    });
  const verb = (name: "promote" | "abort", description: string) =>
    jsonOption(new Command(name).description(description))
      .argument("<service>")
      .action(async (svc: string, flags: { json?: boolean }, self: Command) => {
        await withScheduler(self, async (client) => {
          const req = { tenant: client.options.tenant, name: svc };
          const { service } = name === "promote" ? await client.promoteRollout(req) : await client.abortRollout(req);
          if (flags.json && service) printJson(api.Service.toJSON(service));
          else print(`service ${svc}: ${name} requested; the controller acts on it within a second`);
        });
      });
  return cmd
    .addCommand(status)
    .addCommand(verb("promote", "move the rollout to its next step now (its new replicas must be ready)"))
    .addCommand(verb("abort", "roll back to the revision the rollout started from"));
}
