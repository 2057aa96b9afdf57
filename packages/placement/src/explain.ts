/** Human-readable lines for an explanation (the CLI's `explain` prints them as they are). */
import { formatUsd } from "@capa/domain";
import type { Explanation, Placement } from "./model.js";

export function describePlacement(p: Placement): string {
  const where =
    p.gpuModel === ""
      ? `${p.agentId} (${p.region}, CPU only)`
      : `${p.agentId} (${p.gpuModel} ×${p.gpuIndices.length || "?"}, ${p.region})`;
  const price =
    p.gpuModel === "" ? "" : ` at ${formatUsd(p.pricePerGpuHour)}/GPU-h${p.interruptible ? " interruptible" : ""}`;
  const parts = Object.entries(p.scores)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return `replica ${p.replica} → ${where}${price}, score ${p.score} (${parts})`;
}

export function describePlan(e: Explanation): string[] {
  const lines: string[] = e.elastic ? [e.elastic.summary] : [];
  const rejected = Object.entries(e.rejections)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))
    .map(([reason, n]) => `${n} ${reason}`)
    .join(", ");
  switch (e.outcome) {
    case "placed":
      lines.push(
        `placed ${e.chosen.length} replica(s), estimated ${formatUsd(e.estimatedCost)} (profile ${e.profile})`,
      );
      break;
    case "preempting":
      lines.push(
        `placed ${e.chosen.length} replica(s) by preempting ${e.preemptedTaskIds.length} task(s): ${e.preemptedTaskIds.join(", ")}`,
      );
      break;
    case "pending":
      if (e.awaitingTaskIds && e.awaitingTaskIds.length > 0) {
        lines.push(
          `pending: fits once ${e.awaitingTaskIds.length} stopping task(s) release their GPUs: ${e.awaitingTaskIds.join(", ")}`,
        );
      } else lines.push("pending: feasible on this fleet, but not enough free capacity now");
      break;
    case "unplaceable":
      lines.push("unplaceable: no agent in the fleet satisfies the job's constraints");
      break;
  }
  for (const p of e.chosen) lines.push(describePlacement(p));
  if (e.runnerUp.length > 0) lines.push(`runner-up: ${describePlacement(e.runnerUp[0]!)}`);
  lines.push(`considered ${e.candidatesConsidered} candidate(s)${rejected ? `; rejected: ${rejected}` : ""}`);
  if (e.relaxation !== "") lines.push(`would place if you ${e.relaxation}`);
  return lines;
}
