/**
 * The ScheduleService operations in domain terms: apply (create or replace the spec), get/list, delete, and
 * trigger (queue a run, durable before the answer, idempotent by trigger id). Any scheduler replica answers;
 * only the leader's controller turns queued triggers and due fires into runs.
 */
import { randomUUID } from "node:crypto";
import type { TypedKv } from "@capa/bus";
import {
  type FieldViolation,
  NotFoundError,
  nextFireAfter,
  ResourceExhaustedError,
  type ScheduleSpec,
  scheduleSpecViolations,
  tenantViolations,
  throwIfViolations,
} from "@capa/domain";
import { MAX_PENDING_TRIGGERS, type ScheduleRecord, scheduleKey } from "./model.js";

const NAME = /^[a-z0-9-]{1,48}$/;
const TRIGGER_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function nameViolations(tenant: string, name: string): FieldViolation[] {
  const v = tenantViolations(tenant);
  if (!NAME.test(name)) v.push({ field: "name", message: "must be a schedule name (lower-case letters, digits, '-')" });
  return v;
}

export interface TriggerInput {
  /** "" = a fresh id. */
  triggerId: string;
  reason: string;
}

export class ScheduleApi {
  constructor(
    private readonly schedules: TypedKv<ScheduleRecord>,
    private readonly now: () => number,
  ) {}

  async apply(tenant: string, spec: ScheduleSpec | undefined): Promise<{ record: ScheduleRecord; changed: boolean }> {
    const v = tenantViolations(tenant);
    if (!spec) v.push({ field: "spec", message: "is required" });
    else v.push(...scheduleSpecViolations(spec));
    throwIfViolations(v);
    const s = spec as ScheduleSpec;
    const nowMs = this.now();
    let changed = false;
    const entry = await this.schedules.mutate(scheduleKey(tenant, s.name), (cur) => {
      changed = false;
      if (cur && JSON.stringify(cur.spec) === JSON.stringify(s)) return undefined;
      changed = true;
      const timing = !cur || cur.spec.cron !== s.cron || cur.spec.timezone !== s.timezone;
      return {
        name: s.name,
        tenant,
        spec: s,
        // A new expression counts from now; an unchanged one keeps its next fire time.
        nextFireAtMs: timing ? (nextFireAfter(s.cron, s.timezone, nowMs) ?? 0) : cur.nextFireAtMs,
        lastFireAtMs: cur?.lastFireAtMs ?? 0,
        runs: cur?.runs ?? [],
        pending: cur?.pending ?? [],
        nextSeq: cur?.nextSeq ?? 1,
        createdAtMs: cur?.createdAtMs ?? nowMs,
        updatedAtMs: nowMs,
      };
    });
    return { record: entry!.value, changed };
  }

  async get(tenant: string, name: string): Promise<ScheduleRecord> {
    throwIfViolations(nameViolations(tenant, name));
    const entry = await this.schedules.get(scheduleKey(tenant, name));
    if (!entry) throw new NotFoundError(`schedule ${name} not found for tenant ${tenant}`);
    return entry.value;
  }

  async list(tenant: string): Promise<ScheduleRecord[]> {
    throwIfViolations(tenantViolations(tenant));
    return (await this.schedules.list())
      .map((e) => e.value)
      .filter((r) => r.tenant === tenant)
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async delete(tenant: string, name: string): Promise<void> {
    throwIfViolations(nameViolations(tenant, name));
    const key = scheduleKey(tenant, name);
    if (!(await this.schedules.get(key))) throw new NotFoundError(`schedule ${name} not found for tenant ${tenant}`);
    await this.schedules.delete(key);
  }

  /** Queues a run; `queued` is false when the trigger id was already queued or is in the history. */
  async trigger(tenant: string, name: string, input: TriggerInput): Promise<{ triggerId: string; queued: boolean }> {
    const v = nameViolations(tenant, name);
    if (input.triggerId !== "" && !TRIGGER_ID.test(input.triggerId))
      v.push({ field: "trigger_id", message: "must be 1-128 letters, digits, '.', '_', ':' or '-'" });
    if (input.reason.length > 256) v.push({ field: "reason", message: "must be at most 256 characters" });
    throwIfViolations(v);
    const triggerId = input.triggerId || `t-${randomUUID()}`;
    const key = scheduleKey(tenant, name);
    let queued = false;
    const entry = await this.schedules.mutate(key, (cur) => {
      queued = false;
      if (!cur) throw new NotFoundError(`schedule ${name} not found for tenant ${tenant}`);
      if (cur.pending.some((t) => t.triggerId === triggerId) || cur.runs.some((r) => r.triggerId === triggerId))
        return undefined;
      if (cur.pending.length >= MAX_PENDING_TRIGGERS)
        throw new ResourceExhaustedError(
          `schedule ${name} has ${MAX_PENDING_TRIGGERS} triggers queued already; retry once they have started`,
        );
      queued = true;
      const nowMs = this.now();
      return {
        ...cur,
        pending: [...cur.pending, { triggerId, reason: input.reason || "triggered", atMs: nowMs }],
        updatedAtMs: nowMs,
      };
    });
    if (!entry) throw new NotFoundError(`schedule ${name} not found for tenant ${tenant}`);
    return { triggerId, queued };
  }
}
