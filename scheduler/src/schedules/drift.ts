/**
 * A service's drift rule → a run of the Schedule its policy names (`drift.trigger`), in the service's tenant.
 * The trigger id is `drift-<service>-r<revision>`, so however often the rule is re-evaluated for a revision (a
 * retried round, a new leader) the schedule queues it once.
 */
import { NotFoundError, ValidationError } from "@capa/domain";
import type { ScheduleApi } from "./schedule-api.js";

export interface DriftFire {
  tenant: string;
  service: string;
  revision: number;
  metric: string;
  value: number;
  threshold: number;
  /** The schedule's name. */
  trigger: string;
  region: string;
}

export const driftTriggerId = (f: Pick<DriftFire, "service" | "revision">) => `drift-${f.service}-r${f.revision}`;

/** Queues the run; answers what happened, for the service's drift event. Store failures throw (retried). */
export function retrainOnDrift(api: Pick<ScheduleApi, "trigger">) {
  return async (f: DriftFire): Promise<string> => {
    const triggerId = driftTriggerId(f);
    const reason = `drift: ${f.metric} ${f.value} > ${f.threshold} on service ${f.service} revision ${f.revision} (${f.region})`;
    try {
      const { queued } = await api.trigger(f.tenant, f.trigger, { triggerId, reason: reason.slice(0, 256) });
      return queued
        ? `schedule ${f.trigger} run queued (trigger ${triggerId})`
        : `schedule ${f.trigger} had it already`;
    } catch (err) {
      if (err instanceof NotFoundError) return `no schedule ${f.trigger} in tenant ${f.tenant}: no run started`;
      if (err instanceof ValidationError) return `${f.trigger} is not a schedule name: no run started`;
      throw err;
    }
  };
}
