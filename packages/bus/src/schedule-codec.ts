/** ScheduleSpec (domain) → protobuf, shared by the scheduler's answers and the CLI's requests. */
import * as pb from "@capa/api";
import type { ConcurrencyPolicy, ScheduleSpec } from "@capa/domain";
import { jobSpecToPb } from "./codec.js";

export const CONCURRENCY_POLICY_TO_PB: Readonly<Record<ConcurrencyPolicy, pb.ConcurrencyPolicy>> = {
  forbid: pb.ConcurrencyPolicy.CONCURRENCY_POLICY_FORBID,
  replace: pb.ConcurrencyPolicy.CONCURRENCY_POLICY_REPLACE,
  allow: pb.ConcurrencyPolicy.CONCURRENCY_POLICY_ALLOW,
};

export function scheduleSpecToPb(s: ScheduleSpec): pb.ScheduleSpec {
  return {
    name: s.name,
    cron: s.cron,
    timezone: s.timezone,
    concurrencyPolicy: CONCURRENCY_POLICY_TO_PB[s.concurrency],
    historyLimit: s.historyLimit,
    suspend: s.suspend,
    job: jobSpecToPb(s.job),
  };
}
