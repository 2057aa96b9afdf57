/** Test helper: a JobService over in-memory stores, with an admission that records what it holds reserved. */
import { jsonCodec, TypedKv } from "@capa/bus";
import { JobService } from "../jobs/job-service.js";
import type { AdmissionApi } from "../market/admission.js";
import { memoryKv } from "../market/memory-kv.test-helper.js";
import { RequestClaims } from "../requests/claims.js";
import type { JobRepo } from "../store/job-repo.js";
import type { RequestRecord } from "../store/records.js";

/** Every reservation is 7; `beforeReserve` may hold it (a budgets store that answers nothing yet). */
export function memoryJobService(
  repo: JobRepo,
  now: () => number,
  beforeReserve: () => Promise<void> = async () => {},
): { service: JobService; reservations: Map<string, number> } {
  const reservations = new Map<string, number>();
  const admission: AdmissionApi = {
    async reserve(_tenant, jobId) {
      await beforeReserve();
      reservations.set(jobId, 7);
      return 7;
    },
    async release(_tenant, jobId) {
      reservations.delete(jobId);
    },
  };
  const requests = new TypedKv<RequestRecord>(memoryKv(), jsonCodec<RequestRecord>());
  const service = new JobService(
    repo,
    new RequestClaims([requests]),
    now,
    () => {},
    () => {},
    admission,
  );
  return { service, reservations };
}
