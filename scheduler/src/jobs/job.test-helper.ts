/** Test helper: a job record as submitted (tenant "acme", created at 1), with `fields` over the defaults. */
import { defaultJobSpec, type Job } from "@capa/domain";

export function testJob(id: string, fields: Partial<Job> = {}): Job {
  return {
    id,
    tenant: "acme",
    requestId: "",
    spec: defaultJobSpec(),
    state: "pending",
    reason: "",
    tasks: [],
    createdAtMs: 1,
    updatedAtMs: 1,
    finishedAtMs: 0,
    cancelRequested: false,
    spent: 0,
    reserved: 0,
    ...fields,
  };
}
