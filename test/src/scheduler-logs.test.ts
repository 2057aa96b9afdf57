/**
 * StreamLogs(follow) failure paths against a real nats-server: the client going away leaves no log consumers
 * behind, and a follow whose JetStream stream disappears mid-stream ends with UNAVAILABLE while the scheduler
 * (running in this process, so an unhandled rejection would fail the run) keeps serving.
 */
import type * as pb from "@capa/api";
import { encode, ensureStore, STREAMS, subjects } from "@capa/bus";
import { waitFor } from "@capa/testkit";
import { credentials, makeGenericClientConstructor, type ServiceError, status } from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJob, type Harness, logs, rpc, spec, startHarness, stateName, submit } from "./scheduler-harness.js";

/** Names of CAPA_LOGS consumers reading a task's logs (the ordered consumers StreamLogs creates). */
async function logConsumers(h: Harness): Promise<string[]> {
  const names: string[] = [];
  for await (const ci of h.store.jsm.consumers.list(STREAMS.logs)) {
    const filters = [ci.config.filter_subject ?? "", ...(ci.config.filter_subjects ?? [])];
    if (filters.some((f) => f.includes(".logs"))) names.push(ci.name);
  }
  return names;
}

async function publishLog(h: Harness, jobId: string, taskId: string, text: string, seq: number): Promise<void> {
  await h.store.js.publish(
    subjects.taskLogs(taskId, "log-agent"),
    encode.log({ taskId, jobId, stream: "stdout", data: Buffer.from(text), seq, atMs: Date.now() }),
  );
}

/** A job that stays PENDING (no agents): a follow on it runs until the client or a failure ends it. */
async function pendingJob(h: Harness, replicas: number): Promise<pb.Job> {
  const { job } = await submit(h, spec({ replicas }, ["sleep", "1000"]));
  const got = await getJob(h, job!.id);
  expect(stateName(got.state)).toBe("PENDING");
  expect(got.tasks).toHaveLength(replicas);
  return got;
}

async function healthServing(h: Harness): Promise<boolean> {
  const Health = makeGenericClientConstructor(healthService, "grpc.health.v1.Health");
  const client = new Health(h.scheduler.grpcAddress, credentials.createInsecure()) as unknown as {
    check(req: { service: string }, cb: (err: ServiceError | null, res: { status: string | number }) => void): void;
    close(): void;
  };
  try {
    const res = await rpc<{ status: string | number }>((cb) => client.check({ service: "capa.v1.JobService" }, cb));
    return res.status === "SERVING" || res.status === 1;
  } finally {
    client.close();
  }
}

describe("StreamLogs follow", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("a client that cancels a follow leaves no log consumers behind", async () => {
    const job = await pendingJob(h, 3);
    const follow = logs(h, job.id, true);
    const ended = follow.done.then(
      () => undefined,
      (err: ServiceError) => err,
    );
    await publishLog(h, job.id, job.tasks[1]!.id, "before cancel\n", 1);
    await waitFor(() => follow.text() === "before cancel\n", { what: "the follow delivering a line" });
    await waitFor(async () => (await logConsumers(h)).length === 3, { what: "one consumer per followed task" });

    follow.cancel();
    expect((await ended)?.code).toBe(status.CANCELLED);
    await waitFor(async () => (await logConsumers(h)).length === 0, { what: "log consumers deleted" });
  });

  it("cancelling many follows at once drains every consumer", async () => {
    const job = await pendingJob(h, 2);
    const follows = Array.from({ length: 5 }, () => logs(h, job.id, true));
    for (const f of follows) f.done.catch(() => undefined);
    await waitFor(async () => (await logConsumers(h)).length === 10, { what: "two consumers per follow" });
    for (const f of follows) f.cancel();
    await waitFor(async () => (await logConsumers(h)).length === 0, { what: "log consumers deleted" });
  });
});

describe("StreamLogs follow when JetStream fails", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("the log stream deleted mid-follow ends it with UNAVAILABLE; the scheduler keeps serving", async () => {
    const job = await pendingJob(h, 2);
    const follow = logs(h, job.id, true);
    const ended = follow.done.then(
      () => undefined,
      (err: ServiceError) => err,
    );
    await publishLog(h, job.id, job.tasks[0]!.id, "line one\n", 1);
    await waitFor(() => follow.text() === "line one\n", { what: "the follow delivering a line" });

    await h.store.jsm.streams.delete(STREAMS.logs);
    const err = await ended;
    expect(err?.code).toBe(status.UNAVAILABLE);
    expect(err?.details).toMatch(/CAPA_LOGS|retry/);

    // Still alive and serving: reads, health, and (once the stream is back) logs again.
    expect(stateName((await getJob(h, job.id)).state)).toBe("PENDING");
    expect(await healthServing(h)).toBe(true);
    await ensureStore(h.nc);
    await publishLog(h, job.id, job.tasks[1]!.id, "after\n", 1);
    const again = logs(h, job.id, false);
    await again.done;
    expect(again.text()).toBe("after\n");
    await waitFor(async () => (await logConsumers(h)).length === 0, { what: "log consumers deleted" });
  });

  it("a follow whose stream is missing from the start ends with UNAVAILABLE", async () => {
    const job = await pendingJob(h, 1);
    await h.store.jsm.streams.delete(STREAMS.logs);
    try {
      const follow = logs(h, job.id, true);
      const err = await follow.done.then(
        () => undefined,
        (e: ServiceError) => e,
      );
      expect(err?.code).toBe(status.UNAVAILABLE);
      expect(await healthServing(h)).toBe(true);
    } finally {
      await ensureStore(h.nc);
    }
  });
});

describe("StreamLogs follow across a nats-server restart", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("the scheduler survives; the follow resumes once nats is back, and its consumers go with the client", async () => {
    const job = await pendingJob(h, 2);
    const follow = logs(h, job.id, true);
    const ended = follow.done.then(
      () => undefined,
      (err: ServiceError) => err,
    );
    await publishLog(h, job.id, job.tasks[0]!.id, "before\n", 1);
    await waitFor(() => follow.text() === "before\n", { what: "the follow delivering a line" });

    await h.nats.restart();
    expect(stateName((await getJob(h, job.id)).state)).toBe("PENDING");
    await waitFor(() => healthServing(h), { what: "health after the restart" });
    await waitFor(
      async () => {
        await publishLog(h, job.id, job.tasks[1]!.id, "after\n", 1);
        return follow.text().includes("after\n");
      },
      { what: "the follow delivering after the restart", intervalMs: 500, timeoutMs: 40_000 },
    );
    follow.cancel();
    expect((await ended)?.code).toBe(status.CANCELLED);
    await waitFor(async () => (await logConsumers(h)).length === 0, { what: "log consumers deleted" });
  });
});
