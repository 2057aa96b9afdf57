import { jsonCodec, TypedKv } from "@capa/bus";
import { defaultJobSpec, type Job, type JobSpec } from "@capa/domain";
import { MonthlyBudgetExceededError } from "@capa/market";
import { describe, expect, it } from "vitest";
import type { AdmissionApi } from "../market/admission.js";
import { memoryKv } from "../market/memory-kv.test-helper.js";
import { RequestClaims } from "../requests/claims.js";
import { JobRepo } from "../store/job-repo.js";
import type { RequestRecord } from "../store/records.js";
import { requestKey } from "../util/ids.js";
import { JobService } from "./job-service.js";

const spec = (overrides: Partial<JobSpec>): JobSpec => ({
  ...defaultJobSpec({ gpusPerReplica: 1 }),
  template: { ...defaultJobSpec().template, command: ["true"] },
  ...overrides,
});

describe("JobService.submit with budget admission", () => {
  it("frees the request id when admission refuses, so a retry with a changed spec is admitted", async () => {
    const requests = new TypedKv<RequestRecord>(memoryKv(), jsonCodec<RequestRecord>());
    const jobs = new JobRepo(new TypedKv<Job>(memoryKv(), jsonCodec<Job>()), () => 0);
    const reserved: string[] = [];
    const admission: AdmissionApi = {
      async reserve(tenant, jobId, s) {
        if (s.budget > 100) {
          throw new MonthlyBudgetExceededError({ tenant, jobId, requested: s.budget, available: 100, limit: 100 });
        }
        reserved.push(jobId);
        return s.budget;
      },
      async release() {},
    };
    const service = new JobService(
      jobs,
      new RequestClaims([requests]),
      () => 1,
      () => {},
      () => {},
      admission,
    );
    const submit = (budget: number) => service.submit({ requestId: "r1", tenant: "acme", spec: spec({ budget }) });

    await expect(submit(500)).rejects.toBeInstanceOf(MonthlyBudgetExceededError);
    expect(await requests.get(requestKey("acme", "r1"))).toBeUndefined();
    expect(jobs.size).toBe(0);

    const admitted = await submit(50);
    expect(admitted.deduplicated).toBe(false);
    expect(admitted.job.reserved).toBe(50);
    expect((await requests.get(requestKey("acme", "r1")))?.value.jobId).toBe(admitted.job.id);
    const again = await submit(50);
    expect([again.deduplicated, again.job.id]).toEqual([true, admitted.job.id]);
    expect(reserved).toEqual([admitted.job.id]);
  });
});
