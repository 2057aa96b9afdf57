/**
 * Start-up recovery from the records a previous life of this agent left in its work dir. Finished tasks come back
 * as final reports to remember (and re-publish while listed), so they never run twice. Tasks that were running when
 * that life ended have no process this life can adopt (their output pipes died with it): they are killed if still
 * alive and reported "lost", which the scheduler answers by placing them again under a new epoch. Their supervisors
 * normally killed them already when that life ended (the task's grace included); what is killed here is what
 * escaped that: a supervisor killed along with the agent, a task started before supervisors existed.
 */
import type { TaskStatusReport } from "@capa/domain";
import type { Logger } from "pino";
import type { Reporter } from "./reporter.js";
import { killOrphanGroup, type TaskRecords } from "./task-records.js";

/** Final reports of every recorded task, after reporting the interrupted ones lost. */
export function recoverTaskRecords(records: TaskRecords, reporter: Reporter, logger: Logger): TaskStatusReport[] {
  const { records: found, unreadable } = records.loadAll();
  if (unreadable.length > 0) logger.warn({ files: unreadable }, "unreadable task records ignored");
  const finals: TaskStatusReport[] = [];
  for (const record of found) {
    if (record.final) {
      finals.push(record.final);
      continue;
    }
    const killed = killOrphanGroup(record);
    const report = reporter.status(record, "lost", {
      startedAtMs: record.startedAtMs ?? 0,
      finishedAtMs: Date.now(),
      message: `agent restarted while the task ran (previous boot ${record.bootId})`,
    });
    logger.warn({ taskId: record.taskId, epoch: record.epoch, killed }, "task from a previous boot reported lost");
    try {
      records.save({ ...record, final: report });
    } catch (err) {
      logger.error({ err, taskId: record.taskId }, "cannot save task record");
    }
    finals.push(report);
  }
  return finals;
}
