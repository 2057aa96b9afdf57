/**
 * Who may report on a task. nats-server permissions already bind a task subject's last token to the publishing
 * agent's NATS user (`capa.v1.task.<taskId>.<kind>.<agentId>`); this pure check adds the two rules the broker cannot
 * know: the payload must name the same agent as the subject, and that agent must hold the task (be its current
 * agent, or still have a listing for it). Anything else is dropped and counted, never folded or billed.
 */
import type { Job } from "@capa/domain";

export type ReportDrop = "agent-mismatch" | "not-held";

export function reportOriginProblem(
  subjectAgentId: string,
  report: { agentId: string; taskId: string },
  job: Job | undefined,
  listed: (agentId: string, taskId: string) => boolean,
): ReportDrop | undefined {
  if (subjectAgentId !== report.agentId) return "agent-mismatch";
  if (!job) return undefined; // an unknown job is its own verdict, counted by the caller
  const task = job.tasks.find((t) => t.id === report.taskId);
  if (!task) return "not-held";
  if (task.agentId === report.agentId || listed(report.agentId, report.taskId)) return undefined;
  return "not-held";
}
