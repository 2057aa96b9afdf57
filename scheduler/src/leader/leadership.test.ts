import { ConflictError } from "@capa/domain";
import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import type { StatusConsumer, StatusDeps } from "../tasks/status-consumer.js";
import { StatusConsumer as RealStatusConsumer } from "../tasks/status-consumer.js";
import { type LeaderPart, Leadership, type LeadershipDeps } from "./leadership.js";

const log = pino({ level: "silent" });

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A leader part that does not cooperate: once its start resolves it runs, whatever happened meanwhile. */
class FakePart implements LeaderPart {
  running = false;
  readonly startCalled = deferred();
  constructor(
    private readonly name: string,
    private readonly events: string[],
    /** Gates the next start only. */
    public gate?: Promise<void>,
    public fail?: Error,
  ) {}
  async start(): Promise<void> {
    this.events.push(`${this.name} start`);
    this.startCalled.resolve();
    const gate = this.gate;
    this.gate = undefined;
    if (gate) await gate;
    if (this.fail) throw this.fail;
    this.running = true;
    this.events.push(`${this.name} running`);
  }
  async stop(): Promise<void> {
    this.running = false;
    this.events.push(`${this.name} stop`);
  }
}

function fakes(over: {
  statuses?: FakePart;
  extras?: LeaderPart[];
  evaluate?: (e?: { jobId: string }, adopt?: boolean) => Promise<void>;
  jobs?: number;
  catchUp?: () => Promise<unknown>;
}) {
  const events: string[] = [];
  const worker = {
    evaluate: vi.fn(over.evaluate ?? (async () => undefined)),
    start: vi.fn(() => events.push("worker start")),
    stop: vi.fn(async () => undefined),
    enqueueWaiting: vi.fn(),
    adoptOnNext: vi.fn(),
  };
  const liveness = { start: vi.fn(() => events.push("liveness start")), stop: vi.fn(), lose: vi.fn() };
  const jobList = Array.from({ length: over.jobs ?? 0 }, (_, i) => ({ job: { id: `job-${i}`, state: 1, tasks: [] } }));
  const deps = {
    jobs: {
      listActive: () => jobList,
      allSummaries: () => [],
      summary: () => undefined,
      get: () => undefined,
      refresh: vi.fn(async () => undefined),
    },
    allocs: {
      all: () => [],
      get: () => undefined,
      catchUp: vi.fn(over.catchUp ?? (async () => events.push("allocs caught up"))),
    },
    registry: { dirty: () => [], list: () => [], persist: async () => undefined },
    applier: { changeListings: async () => true },
    epochs: { observe: () => undefined },
    queue: { clear: vi.fn(), enqueue: vi.fn() },
    worker,
    liveness,
    statuses: over.statuses ?? new FakePart("statuses", events),
    logger: log,
    sweepIntervalMs: 60_000,
    extras: over.extras,
  } as unknown as LeadershipDeps;
  return { deps, events, worker, liveness };
}

describe("leadership: a stop overtakes a pending start (generation)", () => {
  it("stops a part whose start resolves after the lease was lost, and starts nothing else", async () => {
    const gate = deferred();
    const { deps, events, worker, liveness } = fakes({});
    const extra = new FakePart("extra", events, gate.promise);
    deps.extras = [extra];
    const statuses = deps.statuses as unknown as FakePart;
    const leadership = new Leadership(deps);

    const starting = leadership.start();
    await extra.startCalled.promise;
    const stopping = leadership.stop();
    expect(leadership.isActive).toBe(false);
    gate.resolve();
    await stopping;
    await starting;

    expect(extra.running).toBe(false);
    expect(statuses.running).toBe(false);
    expect(events.lastIndexOf("extra stop")).toBeGreaterThan(events.indexOf("extra running"));
    expect(worker.start).not.toHaveBeenCalled();
    expect(worker.enqueueWaiting).not.toHaveBeenCalled();
    expect(liveness.start).not.toHaveBeenCalled();
    // A later stop has nothing left to do, and a later start works normally.
    await leadership.stop();
    await leadership.start();
    expect(extra.running).toBe(true);
    expect(worker.start).toHaveBeenCalledTimes(1);
    await leadership.stop();
    expect(extra.running).toBe(false);
  });

  it("a re-election during a stale start waits for it: one status consumer, started after the stale one stopped", async () => {
    const gate = deferred();
    const events: string[] = [];
    const statuses = new FakePart("statuses", events, gate.promise);
    const { deps, worker } = fakes({ statuses });
    const leadership = new Leadership(deps);

    const first = leadership.start();
    await statuses.startCalled.promise;
    const stopping = leadership.stop();
    const second = leadership.start(); // re-elected before the first start resolved
    expect(leadership.isActive).toBe(true);
    gate.resolve();
    await Promise.all([first, stopping, second]);

    expect(events.filter((e) => e.startsWith("statuses"))).toEqual([
      "statuses start",
      "statuses stop", // the stop
      "statuses running", // the stale start resolves late...
      "statuses stop", // ...and is undone by its own run
      "statuses start", // the re-election
      "statuses running",
    ]);
    expect(statuses.running).toBe(true);
    expect(worker.start).toHaveBeenCalledTimes(1);
    await leadership.stop();
    expect(statuses.running).toBe(false);
  });

  it("a stop during recovery starts no part", async () => {
    const gate = deferred();
    const evaluating = deferred();
    const { deps, worker } = fakes({
      jobs: 3,
      evaluate: async () => {
        evaluating.resolve();
        await gate.promise;
      },
    });
    const statuses = deps.statuses as unknown as FakePart;
    const leadership = new Leadership(deps);
    const starting = leadership.start();
    await evaluating.promise;
    const stopping = leadership.stop();
    gate.resolve();
    await Promise.all([starting, stopping]);
    expect(worker.evaluate).toHaveBeenCalledTimes(1);
    expect(statuses.running).toBe(false);
    expect(worker.start).not.toHaveBeenCalled();
  });

  it("a failed start steps back (rejects, stops what started) and can be retried", async () => {
    const events: string[] = [];
    const extra = new FakePart("extra", events, undefined, new Error("store hiccup"));
    const { deps, worker } = fakes({ extras: [extra] });
    const statuses = deps.statuses as unknown as FakePart;
    const leadership = new Leadership(deps);
    await expect(leadership.start()).rejects.toThrow("store hiccup");
    expect(leadership.isActive).toBe(false);
    expect(statuses.running).toBe(false);
    expect(worker.start).not.toHaveBeenCalled();
    extra.fail = undefined;
    await leadership.start();
    expect(extra.running).toBe(true);
    expect(worker.start).toHaveBeenCalledTimes(1);
    await leadership.stop();
  });
});

describe("status consumer start/stop (fake store)", () => {
  function fakeStore() {
    const gates: Promise<void>[] = [];
    const consumed: { stop: () => void }[] = [];
    const consumeCalled = deferred();
    const store = {
      jsm: {
        consumers: {
          add: vi.fn(async () => {
            const gate = gates.shift();
            if (gate) await gate;
            return {};
          }),
          info: vi.fn(async () => ({})),
        },
      },
      js: {
        consumers: {
          get: async () => ({
            consume: async () => {
              const stopped = deferred();
              const messages = {
                stop: () => stopped.resolve(),
                [Symbol.asyncIterator]: () => ({
                  next: async () => {
                    await stopped.promise;
                    return { done: true as const, value: undefined };
                  },
                }),
              };
              consumed.push(messages);
              consumeCalled.resolve();
              return messages;
            },
          }),
        },
      },
    };
    const consumer: StatusConsumer = new RealStatusConsumer({ store, logger: log } as unknown as StatusDeps);
    return { consumer, gates, consumed, consumeCalled };
  }

  it("a stop during its setup wins: the consumer never starts consuming", async () => {
    const { consumer, gates, consumed } = fakeStore();
    const gate = deferred();
    gates.push(gate.promise);
    const starting = consumer.start();
    await consumer.stop();
    gate.resolve();
    await starting;
    await consumer.stop();
    expect(consumed).toHaveLength(0);
  });

  it("is idempotent: two starts run one loop, and a stop ends it", async () => {
    const { consumer, consumed, consumeCalled } = fakeStore();
    await Promise.all([consumer.start(), consumer.start()]);
    await consumer.start();
    await consumeCalled.promise;
    await consumer.stop();
    expect(consumed).toHaveLength(1);
  });
});

describe("leadership: recovery reads caught-up assignments", () => {
  it("waits for the assignments watch to catch up before it evaluates any job", async () => {
    const gate = deferred();
    const { deps, events, worker } = fakes({
      jobs: 2,
      catchUp: async () => {
        await gate.promise;
        events.push("allocs caught up");
      },
      evaluate: async (e?: { jobId: string }) => {
        events.push(`evaluate ${e?.jobId}`);
      },
    });
    const leadership = new Leadership(deps);
    const starting = leadership.start();
    await new Promise((r) => setTimeout(r, 10));
    expect(worker.evaluate).not.toHaveBeenCalled();
    gate.resolve();
    await starting;
    expect(events.slice(0, 3)).toEqual(["allocs caught up", "evaluate job-0", "evaluate job-1"]);
    await leadership.stop();
  });

  it("a watch that cannot catch up fails the start (retried by the lease holder) before anything is decided", async () => {
    const { deps, worker } = fakes({
      jobs: 1,
      catchUp: async () => {
        throw new Error("the watch of capa_allocs delivered revision 3, the bucket is at 9");
      },
    });
    const leadership = new Leadership(deps);
    await expect(leadership.start()).rejects.toThrow(/bucket is at 9/);
    expect(worker.evaluate).not.toHaveBeenCalled();
    expect(worker.start).not.toHaveBeenCalled();
    expect(leadership.isActive).toBe(false);
  });
});

describe("leadership: recovery of one job never blocks the start", () => {
  it("a conflict (this replica's cached revision is stale) reads the job back and evaluates it again", async () => {
    let calls = 0;
    const { deps, worker } = fakes({
      jobs: 2,
      evaluate: async () => {
        calls++;
        if (calls === 1) throw new ConflictError("key job-0 changed since revision 616");
      },
    });
    const leadership = new Leadership(deps);
    await leadership.start();
    expect(deps.jobs.refresh).toHaveBeenCalledWith("job-0");
    expect(worker.evaluate.mock.calls.map(([e, adopt]) => [e?.jobId, adopt])).toEqual([
      ["job-0", true],
      ["job-0", true],
      ["job-1", true],
    ]);
    expect(worker.start).toHaveBeenCalledTimes(1);
    expect(deps.queue.enqueue).not.toHaveBeenCalled();
    await leadership.stop();
  });

  it("a job that keeps failing is left to the worker's retries, adopting, and the leader starts", async () => {
    const { deps, worker } = fakes({
      jobs: 2,
      evaluate: async (e?: { jobId: string }) => {
        if (e?.jobId === "job-1") throw new ConflictError("key job-1 changed since revision 3");
      },
    });
    const leadership = new Leadership(deps);
    await leadership.start();
    expect(worker.evaluate.mock.calls.filter(([e]) => e?.jobId === "job-1")).toHaveLength(3);
    expect(worker.adoptOnNext).toHaveBeenCalledWith("job-1");
    expect(deps.queue.enqueue).toHaveBeenCalledWith("job-1", "recovery retry", 0, 1);
    expect(worker.start).toHaveBeenCalledTimes(1);
    await leadership.stop();
  });
});
