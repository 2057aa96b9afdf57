/**
 * The fallback against the normal path it takes over, with in-memory stores (the real-NATS version is
 * test/src/submit-intake.test.ts): a job write stuck past the stall budget is acknowledged from the intake, the
 * materialiser writes the job under that id, and the stalled write that fails afterwards releases nothing.
 */
import { jsonCodec, TypedKv } from "@capa/bus";
import { defaultJobSpec, type Job, type JobSpec } from "@capa/domain";
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { JobService as JobServiceType } from "../jobs/job-service.js";
import { memoryKv } from "../market/memory-kv.test-helper.js";
import { SchedulerMetrics } from "../metrics.js";
import { JobRepo } from "../store/job-repo.js";
import type { PendingSubmission } from "./envelope.js";
import { IntakeFallback } from "./fallback.js";
import { memoryJobService } from "./job-service.test-helper.js";
import { PendingIndex } from "./pending-index.js";
import type { IntakeWriter } from "./writer.js";

const spec: JobSpec = {
  ...defaultJobSpec({ gpusPerReplica: 1 }),
  template: { ...defaultJobSpec().template, command: ["true"] },
};

function setup() {
  const jobsKv = memoryKv();
  // The first job write hangs (a stream without a leader) until `unstick`, then fails as a timeout would.
  let unstick: () => void = () => {};
  const stuck = new Promise<void>((r) => {
    unstick = r;
  });
  // The second (the materialiser's) waits for `proceed`: the stalled path fails between its reserve and its write.
  let proceed: () => void = () => {};
  const held = new Promise<void>((r) => {
    proceed = r;
  });
  const create = jobsKv.create.bind(jobsKv);
  let creates = 0;
  jobsKv.create = async (key: string, value: Uint8Array) => {
    const n = creates++;
    if (n === 0) {
      await stuck;
      throw new Error("TIMEOUT");
    }
    if (n === 1) await held;
    return create(key, value);
  };
  const repo = new JobRepo(new TypedKv<Job>(jobsKv, jsonCodec<Job>()), () => 0);
  const { service, reservations } = memoryJobService(repo, () => 1);
  const written: PendingSubmission[] = [];
  const writer = {
    async write(p: PendingSubmission) {
      written.push(p);
      return { stream: "CAPA_INTAKE_0", seq: written.length, pending: p, duplicate: false };
    },
  } as unknown as IntakeWriter;
  const index = new PendingIndex(repo);
  service.useFallback(new IntakeFallback(writer, index, new SchedulerMetrics(), pino({ level: "silent" }), 20));
  return { service, repo, reservations, written, unstick, proceed, index };
}

describe("IntakeFallback with a stalled normal path", () => {
  it("acks from the intake, the materialiser writes the job once, and the stalled path releases nothing", async () => {
    const { service, repo, reservations, written, unstick, proceed } = setup();
    const acked = await service.submit({ requestId: "r1", tenant: "acme", spec });
    expect(written.map((p) => p.job.id)).toEqual([acked.job.id]);
    expect(acked.job.state).toBe("pending");
    // Read before materialisation: the job in its first state, not NOT_FOUND.
    expect((await service.entry(acked.job.id)).revision).toBe(0);

    // The materialiser reserves (a no-op: same job id, same numbers) and is about to write the job when the
    // stalled normal path's write fails and finds no job: it must not release the reservation now.
    const materialised = (service as JobServiceType).materialise(written[0]!);
    await new Promise((r) => setTimeout(r, 10));
    unstick();
    await new Promise((r) => setTimeout(r, 10));
    proceed();
    expect(await materialised).toBe("created");
    const job = await repo.require(acked.job.id);
    expect(job.job.reserved).toBe(7);
    expect([...reservations]).toEqual([[acked.job.id, 7]]);
    expect(await service.materialise(written[0]!)).toBe("existed");
    // A retry of the request id is deduplicated to the same job.
    const again = await service.submit({ requestId: "r1", tenant: "acme", spec });
    expect([again.deduplicated, again.job.id]).toEqual([true, acked.job.id]);
  });

  it("answers a duplicate of a request another submission wrote as deduplicated, whichever stream took it", async () => {
    // Both submissions fall back (their job writes stall); the writer answers each as a new message, as the other
    // intake stream does (msg-id dedup is per stream).
    const { service, written, unstick, proceed } = setup();
    const first = await service.submit({ requestId: "r2", tenant: "acme", spec });
    const second = await service.submit({ requestId: "r2", tenant: "acme", spec });
    expect(written.map((p) => p.job.id)).toEqual([first.job.id, first.job.id]);
    expect([first.deduplicated, second.deduplicated, second.job.id]).toEqual([false, true, first.job.id]);
    unstick();
    proceed();
  });
});
