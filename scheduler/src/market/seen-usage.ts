/**
 * The usage reports the leader's usage consumer has seen, kept per stream subject (task + agent) until the
 * allocation is settled, so settlement need not read them back from CAPA_TASKS (two stream reads per allocation)
 * when they are all here already.
 *
 * "All here" is decided per allocation (task, agent, epoch): the agent numbers its reports of a run 1, 2, ... and
 * marks the last one `final`; when the final report and every sequence number up to it have been seen, these are
 * the reports of the run the stream holds (it stores each msgID once; only that agent may publish on the subject),
 * and metering them gives what metering a read of the stream gives. Anything less (a scheduler restart: the
 * consumer resumes after reports it did not see; a report still on its way; a subject past `maxPerSubject`) is
 * not complete, and settlement reads the stream as before. Reports of other runs on the subject are left out:
 * metering rejects them anyway (another epoch), so they change no amount.
 */
import type { UsageReport } from "@capa/domain";

/** Subjects kept at most (the oldest is forgotten first); an allocation not settled by then is read back. */
const MAX_SUBJECTS = 20_000;
/** Reports kept per subject at most; a longer run is read back from the stream when it is settled. */
const MAX_PER_SUBJECT = 512;

interface Seen {
  reports: UsageReport[];
  /** More than MAX_PER_SUBJECT were seen: never complete. */
  overflow: boolean;
}

export class SeenUsage {
  private readonly bySubject = new Map<string, Seen>();

  constructor(
    private readonly maxSubjects = MAX_SUBJECTS,
    private readonly maxPerSubject = MAX_PER_SUBJECT,
  ) {}

  /** A report delivered on `capa.v1.task.<taskId>.usage.<agentId>` (whatever its verdict). */
  add(taskId: string, agentId: string, report: UsageReport): void {
    if (report.taskId !== taskId || report.agentId !== agentId) return;
    const key = `${taskId} ${agentId}`;
    let seen = this.bySubject.get(key);
    if (!seen) {
      seen = { reports: [], overflow: false };
      this.bySubject.set(key, seen);
      if (this.bySubject.size > this.maxSubjects) this.bySubject.delete(this.bySubject.keys().next().value!);
    }
    if (seen.overflow) return;
    if (seen.reports.length >= this.maxPerSubject) {
      seen.overflow = true;
      seen.reports = [];
      return;
    }
    seen.reports.push(report);
  }

  /** The run's reports when every one up to its final report was seen; undefined when the stream must be read. */
  complete(taskId: string, agentId: string, epoch: number): UsageReport[] | undefined {
    const seen = this.bySubject.get(`${taskId} ${agentId}`);
    if (!seen || seen.overflow) return undefined;
    const run = seen.reports.filter((r) => r.epoch === epoch);
    const last = run.reduce((max, r) => (r.final && r.sequence > max ? r.sequence : max), 0);
    if (last === 0) return undefined;
    const sequences = new Set(run.map((r) => r.sequence));
    for (let s = 1; s <= last; s++) if (!sequences.has(s)) return undefined;
    return run;
  }

  /** The allocation is settled: its subject's reports are not needed any more. */
  forget(taskId: string, agentId: string): void {
    this.bySubject.delete(`${taskId} ${agentId}`);
  }

  clear(): void {
    this.bySubject.clear();
  }

  get size(): number {
    return this.bySubject.size;
  }
}
