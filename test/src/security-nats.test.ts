/**
 * NATS security suite: a real nats-server started with the authorization capa generates (@capa/nats-auth), the
 * scheduler connected as its own nkey user, a real enrolled agent ("victim") running a tenant's task, and three
 * kinds of attacker: an anonymous client, clients with wrong credentials, and an enrolled agent ("mallory") that
 * tries to act as others. Every try is recorded in an AttackTable as denied (the broker or the scheduler refused it
 * and nothing changed), leaked (it read or changed something it must not) or allowed (it went through unrefused);
 * the table is printed and must show 0 leaked and 0 unexpected allows.
 *
 * "Not delivered" is proven without timing: the attacker publishes a sentinel on a subject it owns right after the
 * forged message, and NATS delivers one connection's messages in order, so once the observer has the sentinel it
 * would already have had the forged one. Scheduler-side refusals are awaited through their counters.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentHandle, setAgentPrices, startAgent } from "@capa/agent";
import * as pb from "@capa/api";
import {
  BUCKETS,
  connectBus,
  decode,
  encode,
  INTAKE_STREAMS,
  inboxPrefixFor,
  intakeSubject,
  kvStreamName,
  type NatsConnection,
  OBJECT_BUCKETS,
  STREAMS,
  subjects,
} from "@capa/bus";
import type { Advert, TaskStatusReport, UsageReport } from "@capa/domain";
import { BUDGET_BUCKET, LEDGER_STREAM, readUsageReports } from "@capa/ledger";
import { newUserKeys } from "@capa/nats-auth";
import { AttackTable, waitFor } from "@capa/testkit";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  FakeAgent,
  getJob,
  H100_PRICE,
  type Harness,
  rpc,
  silent,
  spec,
  startHarness,
  submit,
} from "./scheduler-harness.js";
import { waitForState } from "./scheduler-market.js";

const REGION = "eu-west";
const VICTIM = "victim-eu-1";
const MALLORY = "mallory-eu-1";
const TENANT = "victim-co";
const SECRET_LINE = "victim-secret-output-7b";
const SENTINEL = subjects.agentRoot(REGION, MALLORY) + ".sentinel";

/** Sums a counter's samples whose labels include every given `key="value"`. */
async function counterSum(h: Harness, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://${h.scheduler.metricsAddress}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.indexOf("}"));
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`))) sum += Number(line.split(" ").at(-1));
  }
  return sum;
}

describe("NATS security: hostile clients against the generated authorization", () => {
  const table = new AttackTable();
  let h: Harness;
  let victim: AgentHandle;
  let mallory: NatsConnection;
  let workDir: string;
  let gate: string;
  let jobId: string;
  let taskId: string;
  let epoch: number;

  const agents = async () =>
    (await rpc<pb.ListAgentsResponse>((cb) => h.operator.listAgents({ region: "", limit: 0, pageToken: "" }, cb)))
      .agents;
  const victimInfo = async () => (await agents()).find((a) => a.agentId === VICTIM)!;

  /**
   * Core publish by `conn` on `subject`: leaked if the observer (the scheduler user) receives it. Only the forged
   * bytes count: the subject's owner may publish there in the same window (the victim's own heartbeat advert did
   * once, and was counted as the forgery).
   */
  async function corePublish(attack: string, conn: NatsConnection, subject: string, data: Uint8Array): Promise<void> {
    const marker = `${Math.random()}`;
    let forged = 0;
    let sentinel = false;
    const forgedSub = h.nc.subscribe(subject, {
      callback: (_e, m) => {
        if (Buffer.from(m.data).equals(Buffer.from(data))) forged++;
      },
    });
    const sentinelSub = h.nc.subscribe(SENTINEL, {
      callback: (_e, m) => {
        sentinel ||= m.string() === marker;
      },
    });
    await h.nc.flush();
    conn.publish(subject, data);
    conn.publish(SENTINEL, marker);
    await conn.flush();
    await waitFor(() => sentinel, { what: "the sentinel after the forged publish" });
    forgedSub.unsubscribe();
    sentinelSub.unsubscribe();
    table.record(attack, forged > 0 ? "leaked" : "denied");
  }

  /** A call that must be refused (rejects) and must not change what `changed()` checks afterwards. */
  async function refused(attack: string, call: () => Promise<unknown>, changed: () => Promise<boolean>) {
    let rejected = false;
    let result: unknown;
    try {
      result = await call();
    } catch {
      rejected = true;
    }
    if (await changed()) table.record(attack, "leaked");
    else if (rejected || result === null) table.record(attack, "denied");
    else table.record(attack, "allowed");
  }

  /** An advert on mallory's own subject the scheduler must refuse with `reason`; `leaked()` checks the damage. */
  async function refusedAdvert(attack: string, advert: Advert, reason: string, leaked: () => Promise<boolean>) {
    const before = await counterSum(h, "capa_adverts_refused_total", { reason });
    mallory.publish(subjects.advert(REGION, MALLORY), encode.advert(advert));
    await mallory.flush();
    let counted = true;
    try {
      await waitFor(async () => (await counterSum(h, "capa_adverts_refused_total", { reason })) > before, {
        what: `advert refused as ${reason}`,
        timeoutMs: 10_000,
      });
    } catch {
      counted = false;
    }
    if (await leaked()) table.record(attack, "leaked");
    else table.record(attack, counted ? "denied" : "allowed");
  }

  /** A JetStream publish of a forged task report by mallory on `subject`; the scheduler must drop it by `reason`. */
  async function forgedReport(
    attack: string,
    kind: "status" | "usage",
    subject: string,
    data: Uint8Array,
    reason: string | undefined,
    leaked: () => Promise<boolean>,
  ) {
    const before = reason ? await counterSum(h, "capa_agent_reports_dropped_total", { kind, reason }) : 0;
    let rejected = false;
    try {
      await jetstream(mallory).publish(subject, data, { timeout: 3_000 });
    } catch {
      rejected = true;
    }
    let dropped = false;
    if (!rejected && reason) {
      try {
        await waitFor(
          async () => (await counterSum(h, "capa_agent_reports_dropped_total", { kind, reason })) > before,
          {
            what: `forged ${kind} dropped as ${reason}`,
            timeoutMs: 10_000,
          },
        );
        dropped = true;
      } catch {
        dropped = false;
      }
    }
    if (await leaked()) table.record(attack, "leaked");
    else table.record(attack, rejected || dropped ? "denied" : "allowed");
  }

  beforeAll(async () => {
    h = await startHarness({ metricsPort: 0 });
    workDir = mkdtempSync(join(tmpdir(), "capa-security-nats-"));
    gate = join(workDir, "gate");
    victim = await startAgent({
      ...(await h.agentNats(VICTIM, REGION)),
      agentId: VICTIM,
      region: REGION,
      prices: [H100_PRICE],
      simulateGpus: "2xH100-80GB",
      workDir: join(workDir, VICTIM),
      advertIntervalMs: 500,
      heartbeatIntervalMs: 200,
      usageIntervalMs: 300,
      logger: silent,
    });
    const { nkeySeed } = await h.enrollAgent(MALLORY, REGION);
    mallory = await connectBus({
      servers: h.nats.url,
      name: "mallory",
      nkeySeed,
      inboxPrefix: inboxPrefixFor(MALLORY),
      maxReconnectAttempts: 0,
    });
    await waitFor(async () => (await agents()).some((a) => a.agentId === VICTIM), { what: "the victim agent" });
    const job = await submit(
      h,
      spec({ maxPriceMicrosPerGpuHour: 3_000_000 }, [
        "sh",
        "-c",
        `echo ${SECRET_LINE}; while [ ! -f ${gate} ]; do sleep 0.05; done`,
      ]),
      { tenant: TENANT },
    );
    jobId = job.job!.id;
    const running = await waitForState(h, jobId, "RUNNING");
    taskId = running.tasks[0]!.id;
    epoch = running.tasks[0]!.epoch;
    expect(running.tasks[0]!.agentId).toBe(VICTIM);
  });

  afterAll(async () => {
    console.log(table.render("NATS security suite (real nats-server, generated per-agent authorization)"));
    await mallory?.close().catch(() => {});
    await victim?.stop();
    await h?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it("refuses anonymous and wrong-credential clients at connect", async () => {
    const tries: [string, Parameters<typeof connectBus>[0]][] = [
      ["anonymous client connects", { servers: h.nats.url, name: "anon" }],
      ["wrong credential: user/password", { servers: h.nats.url, name: "up", user: "admin", pass: "admin" }],
      ["wrong credential: token", { servers: h.nats.url, name: "tok", token: "s3cret" }],
      ["wrong credential: unknown nkey", { servers: h.nats.url, name: "nk", nkeySeed: newUserKeys().seed }],
    ];
    for (const [attack, options] of tries) {
      for (let i = 0; i < 2; i++) {
        await refused(
          attack,
          async () => {
            const nc = await connectBus({ ...options, maxReconnectAttempts: 0, timeoutMs: 3_000 });
            await nc.close();
            return "connected";
          },
          async () => false,
        );
      }
    }
  });

  it("a fake agent's advert never reaches the scheduler and never wins a placement", async () => {
    const fake: Advert = {
      ...new FakeAgent(h, "fake-cheap", REGION, 8).advert(),
      prices: [{ gpuModel: "H100-80GB", onDemandPerHour: 10_000, interruptiblePerHour: 0 }],
    };
    await corePublish(
      "fake agent advert (its own subject, not enrolled)",
      mallory,
      subjects.advert(REGION, "fake-cheap"),
      encode.advert(fake),
    );
    await refusedAdvert(
      "fake agent advert (on an enrolled agent's subject)",
      { ...fake, agentId: "fake-cheap" },
      "agent-id-differs-from-subject",
      async () => (await agents()).some((a) => a.agentId === "fake-cheap"),
    );
    // A job only the fake could take ($0.05/GPU-h) is planned and stays pending: the fake never won it.
    const { job } = await submit(h, spec({ maxPriceMicrosPerGpuHour: 50_000 }), { tenant: TENANT });
    await waitFor(async () => (await getJob(h, job!.id)).reason !== "", { what: "the cheap job planned" });
    const planned = await getJob(h, job!.id);
    table.record(
      "fake agent advert wins a placement",
      planned.tasks.some((t) => t.agentId === "fake-cheap") ? "leaked" : "denied",
    );
    await rpc((cb) => h.jobs.cancelJob({ jobId: job!.id, reason: "cleanup" }, cb));
  });

  it("cannot re-advertise another agent's GPUs or prices, nor contradict itself", async () => {
    const base = new FakeAgent(h, MALLORY, REGION, 2).advert();
    const victimAdvert = victim.advert();
    const victimPrice = async () => (await victimInfo()).prices[0]?.onDemandMicrosPerHour;
    const cheap = [{ gpuModel: "H100-80GB", onDemandPerHour: 10_000, interruptiblePerHour: 0 }];
    await corePublish(
      "re-advertise another agent's prices (its subject)",
      mallory,
      subjects.advert(REGION, VICTIM),
      encode.advert({ ...victimAdvert, prices: cheap, sequence: victimAdvert.sequence + 1000 }),
    );
    expect(await victimPrice()).toBe(H100_PRICE.onDemandPerHour);
    await refusedAdvert(
      "re-advertise another agent's GPUs (their UUIDs)",
      { ...base, gpus: victimAdvert.gpus.map((g) => ({ ...g })) },
      "gpu-uuid-held-by-another-agent",
      async () => {
        const m = (await agents()).find((a) => a.agentId === MALLORY);
        return m?.gpus.some((g) => victimAdvert.gpus.some((v) => v.uuid === g.uuid)) ?? false;
      },
    );
    const victimUnchanged = async () => (await victimPrice()) !== H100_PRICE.onDemandPerHour;
    await refusedAdvert(
      "new boot id for an agent id it does not own",
      { ...victimAdvert, prices: cheap, bootId: "mallory-boot", sequence: 1 },
      "boot-id-for-unowned-agent",
      victimUnchanged,
    );
    const malloryListed = async () => (await agents()).some((a) => a.agentId === MALLORY);
    await refusedAdvert(
      "advert contradiction: more GPUs than indices",
      { ...base, gpus: [base.gpus[0]!, { ...base.gpus[1]!, index: 0 }] },
      "more-gpus-than-indices",
      malloryListed,
    );
    await refusedAdvert(
      "advert contradiction: one GPU UUID twice",
      { ...base, gpus: [base.gpus[0]!, { ...base.gpus[1]!, uuid: base.gpus[0]!.uuid }] },
      "duplicate-gpu-uuid",
      malloryListed,
    );
    await refusedAdvert(
      "advert contradiction: region other than its subject",
      { ...base, region: "us-east" },
      "region-differs-from-subject",
      malloryListed,
    );
    await corePublish(
      "advert in a region it is not enrolled in",
      mallory,
      subjects.advert("us-east", MALLORY),
      encode.advert({ ...base, region: "us-east" }),
    );
    await refusedAdvert(
      "runaway price ($1,000,000/GPU-h)",
      { ...base, prices: [{ gpuModel: "H100-80GB", onDemandPerHour: 1_000_000_000_000, interruptiblePerHour: 0 }] },
      "price-above-ceiling",
      malloryListed,
    );
    await refusedAdvert(
      "negative price",
      { ...base, prices: [{ gpuModel: "H100-80GB", onDemandPerHour: -1, interruptiblePerHour: 0 }] },
      "invalid-price",
      malloryListed,
    );
  });

  it("cannot send price control to another provider's agent", async () => {
    for (const prices of ["H100-80GB=0.01", "H100-80GB=999999"]) {
      await refused(
        "price control to another provider's agent",
        () => setAgentPrices(mallory, REGION, VICTIM, prices, { timeoutMs: 3_000 }),
        async () => victim.prices()[0]?.onDemandPerHour !== H100_PRICE.onDemandPerHour,
      );
    }
  });

  it("cannot forge service load reports (scheduler-only subject)", async () => {
    const forged = {
      from: "evil",
      tenant: TENANT,
      name: "echo",
      report: { gatewayId: "gw", region: REGION, windowMs: 1000, requests: 1e6, replicas: [] },
    };
    await corePublish(
      "publish a forged load report (autoscale another tenant's service)",
      mallory,
      subjects.serviceLoad(TENANT, "echo"),
      new TextEncoder().encode(JSON.stringify(forged)),
    );
  });

  it("cannot forge a task's status or usage report", async () => {
    const status = (agentId: string): TaskStatusReport => ({
      taskId,
      jobId,
      agentId,
      epoch,
      state: "succeeded",
      exitCode: 0,
      signal: "",
      startedAtMs: Date.now() - 1_000,
      finishedAtMs: Date.now(),
      message: "forged",
      sentAtMs: Date.now(),
      bootId: victim.advert().bootId,
    });
    const jobDone = async () => (await getJob(h, jobId)).state !== pb.JobState.JOB_STATE_RUNNING;
    const usage = (agentId: string): UsageReport => ({
      taskId,
      jobId,
      agentId,
      epoch,
      startedAtMs: Date.now() - 1_000,
      untilMs: Date.now(),
      gpus: 1,
      gpuMilliseconds: 1,
      final: true,
      sequence: 987_654,
    });
    const forgedUsageCounts = async () =>
      (await readUsageReports(h.store.js, h.store.jsm, taskId, VICTIM)).some((r) => r.sequence === 987_654);
    // [on whose subject, the agent named in the payload, the scheduler's drop reason (none: the broker refuses)]
    const variants: [string, string, string, string | undefined][] = [
      ["victim's subject", VICTIM, VICTIM, undefined],
      ["own subject, victim in payload", MALLORY, VICTIM, "agent-mismatch"],
      ["a task it does not hold", MALLORY, MALLORY, "not-held"],
    ];
    for (const [variant, subjectAgent, payloadAgent, reason] of variants) {
      await forgedReport(
        `forged SUCCEEDED status (${variant})`,
        "status",
        subjects.taskStatus(taskId, subjectAgent),
        encode.status(status(payloadAgent)),
        reason,
        jobDone,
      );
      await forgedReport(
        `forged final usage report (${variant})`,
        "usage",
        subjects.taskUsage(taskId, subjectAgent),
        encode.usage(usage(payloadAgent)),
        reason,
        forgedUsageCounts,
      );
    }
  });

  it("cannot read another agent's assignments or another tenant's logs", async () => {
    const js = jetstream(mallory, { timeout: 3_000 });
    const leakedValue = (v: unknown) => async () => v !== undefined && v !== null;
    for (const allow_direct of [true, false]) {
      let got: unknown;
      await refused(
        `read another agent's assignments (KV get, direct=${allow_direct})`,
        async () => {
          got = await (await new Kvm(js).open(BUCKETS.allocs, { allow_direct })).get(VICTIM);
          return got;
        },
        async () => leakedValue(got)(),
      );
    }
    for (const key of [VICTIM, ">"]) {
      let received = 0;
      await refused(
        `watch another agent's assignments (key ${key})`,
        async () => {
          const kv = await new Kvm(js).open(BUCKETS.allocs, { allow_direct: true });
          const it = await kv.watch({ key });
          void (async () => {
            for await (const _e of it) received++;
          })();
          return it;
        },
        async () => received > 0,
      );
    }
    // A consumer create on its own (allowed) subject whose body filters the victim's key.
    let delivered = 0;
    const inbox = `${inboxPrefixFor(MALLORY)}.steal`;
    const steal = mallory.subscribe(inbox, {
      callback: (err) => {
        if (!err) delivered++;
      },
    });
    await refused(
      "consumer on its own key subject filtering another's",
      async () => {
        const reply = await mallory.request(
          `$JS.API.CONSUMER.CREATE.${kvStreamName(BUCKETS.allocs)}.steal.$KV.${BUCKETS.allocs}.${MALLORY}`,
          JSON.stringify({
            stream_name: kvStreamName(BUCKETS.allocs),
            config: {
              name: "steal",
              filter_subject: `$KV.${BUCKETS.allocs}.${VICTIM}`,
              deliver_subject: inbox,
              ack_policy: "none",
            },
          }),
          { timeout: 3_000 },
        );
        const body = JSON.parse(reply.string()) as { error?: unknown };
        if (body.error) throw new Error(JSON.stringify(body.error));
        return body;
      },
      async () => {
        await mallory.flush();
        return delivered > 0;
      },
    );
    steal.unsubscribe();
    for (const subject of [
      `$KV.${BUCKETS.allocs}.${VICTIM}`,
      subjects.taskLogsAnyAgent(taskId),
      "capa.v1.task.>",
      ">",
    ]) {
      let got = 0;
      await refused(
        `subscribe to ${subject}`,
        async () => {
          const sub = mallory.subscribe(subject, {
            callback: (err) => {
              if (!err) got++;
            },
          });
          await mallory.flush();
          if (sub.isClosed()) throw new Error("subscription refused");
          return sub;
        },
        async () => got > 0,
      );
    }
    let read: unknown;
    await refused(
      "read another tenant's logs (consumer on CAPA_LOGS)",
      async () => {
        const c = await js.consumers.get(STREAMS.logs, { filter_subjects: subjects.taskLogsAnyAgent(taskId) });
        read = await c.next({ expires: 2_000 });
        return read;
      },
      async () => read !== null && read !== undefined,
    );
    expect(mallory.isClosed()).toBe(false);
  });

  it("cannot write the ledger, any KV bucket or any stream", async () => {
    const scheduler = await jetstreamManager(h.nc);
    const count = async (stream: string) => (await scheduler.streams.info(stream)).state.messages;
    const js = jetstream(mallory, { timeout: 3_000 });
    const ledgerBefore = await count(LEDGER_STREAM);
    for (const subject of [
      `capa.v1.ledger.charge.other-co.${taskId}.99`,
      `capa.v1.ledger.payout.${MALLORY}.${taskId}.99`,
    ]) {
      await refused(
        "publish an entry to CAPA_LEDGER",
        () => js.publish(subject, new TextEncoder().encode('{"amount":999000000}')),
        async () => (await count(LEDGER_STREAM)) !== ledgerBefore,
      );
    }
    // Every bucket the scheduler has, and the keys that matter most.
    const kvm = new Kvm(h.store.js);
    const buckets: string[] = [];
    for await (const s of kvm.list()) buckets.push(s.bucket);
    expect(buckets).toEqual(expect.arrayContaining([BUCKETS.jobs, BUCKETS.allocs, BUCKETS.agents, BUDGET_BUCKET]));
    const keyOf: Record<string, string> = {
      [BUCKETS.jobs]: jobId,
      [BUCKETS.allocs]: MALLORY,
      [BUCKETS.agents]: VICTIM,
      [BUDGET_BUCKET]: `t.${TENANT}`,
    };
    for (const bucket of buckets) {
      const key = keyOf[bucket] ?? "attack";
      const ours = await kvm.open(bucket);
      const before = (await ours.get(key))?.revision ?? 0;
      // Mallory's mark in the key's history since the attack began: its value, or a delete/purge marker. Not "the
      // revision moved": the victim's job is live, and the scheduler rewrites it (a report folded) meanwhile.
      const tampered = async () => {
        for await (const e of await ours.history({ key }))
          if (e.revision > before && (e.operation !== "PUT" || e.string() === "garbage")) return true;
        return false;
      };
      const theirs = await new Kvm(js).open(bucket);
      for (const [verb, call] of [
        ["write", () => theirs.put(key, new TextEncoder().encode("garbage"))],
        ["delete", () => theirs.delete(key)],
        ["purge", () => theirs.purge(key)],
      ] as const) {
        await refused(`${verb} keys in ${bucket}`, call, tampered);
      }
    }
    const jsm = await jetstreamManager(mallory, { checkAPI: false });
    for (const stream of [LEDGER_STREAM, STREAMS.tasks, STREAMS.logs, kvStreamName(BUCKETS.jobs), ...INTAKE_STREAMS]) {
      const before = await count(stream);
      await refused(
        `purge stream ${stream}`,
        () => jsm.streams.purge(stream),
        async () => (await count(stream)) < before,
      );
      await refused(
        `delete stream ${stream}`,
        () => jsm.streams.delete(stream),
        async () =>
          scheduler.streams.info(stream).then(
            () => false,
            () => true,
          ),
      );
    }
    await refused(
      "delete the scheduler's status consumer",
      () => jsm.consumers.delete(STREAMS.tasks, "capa-scheduler-status"),
      async () =>
        scheduler.consumers.info(STREAMS.tasks, "capa-scheduler-status").then(
          () => false,
          () => true,
        ),
    );
  });

  // Purging or deleting the intake streams: with every other stream in "cannot write the ledger, any KV bucket…".
  it("cannot write, read or delete from the intake streams (the submit fallback's, scheduler-only)", async () => {
    const scheduler = await jetstreamManager(h.nc);
    const count = async (stream: string) => (await scheduler.streams.info(stream)).state.messages;
    // Something to steal: a pending submission only the scheduler may see (undecodable, so never materialised).
    const secret = await jetstream(h.nc).publish(intakeSubject(1, "jsecuritysecret"), "victim-submission-secret");
    const js = jetstream(mallory, { timeout: 3_000 });
    const jsm = await jetstreamManager(mallory, { checkAPI: false });
    for (const [i, stream] of INTAKE_STREAMS.entries()) {
      const before = await count(stream);
      await refused(
        `publish a pending submission to ${stream}`,
        () => js.publish(intakeSubject(i, "jforgedforgedforg"), new TextEncoder().encode("{}"), { retries: 0 }),
        async () => (await count(stream)) !== before,
      );
      // A cancel intent is a message on the job's own intake subject (the materialiser would cancel that job).
      const intent = { v: 1, kind: "cancel", jobId: "jsecuritysecret", tenant: "victim", reason: "mine", atMs: 1 };
      await refused(
        `publish a cancel intent for another tenant's job to ${stream}`,
        () =>
          js.publish(intakeSubject(i, "jsecuritysecret"), new TextEncoder().encode(JSON.stringify(intent)), {
            retries: 0,
          }),
        async () => (await count(stream)) !== before,
      );
      await corePublish(`core-publish on ${stream}'s subjects`, mallory, intakeSubject(i, "jforged"), new Uint8Array());
    }
    let read: unknown;
    await refused(
      "read pending submissions (consumer on CAPA_INTAKE_1)",
      async () => {
        const c = await js.consumers.get(INTAKE_STREAMS[1]);
        read = await c.next({ expires: 2_000 });
        return read;
      },
      async () => read !== null && read !== undefined,
    );
    let got: unknown;
    await refused(
      "read a pending submission by sequence (STREAM.MSG.GET)",
      async () => {
        got = await jsm.streams.getMessage(INTAKE_STREAMS[1], { seq: secret.seq });
        return got;
      },
      async () => got !== null && got !== undefined,
    );
    await refused(
      "delete a pending submission",
      () => jsm.streams.deleteMessage(INTAKE_STREAMS[1], secret.seq),
      async () =>
        (await scheduler.streams.getMessage(INTAKE_STREAMS[1], { seq: secret.seq }).catch(() => null)) === null,
    );
    await scheduler.streams.deleteMessage(INTAKE_STREAMS[1], secret.seq);
  });

  it("cannot read or overwrite another task's checkpoint copies (store or broker)", async () => {
    // A copy of the victim's task in the checkpoint store, as the broker would have written it.
    const store = await new Objm(h.nc).open(OBJECT_BUCKETS.checkpoints);
    const object = `${taskId}/${epoch}/step-1`;
    const secret = new TextEncoder().encode("victim-checkpoint-weights");
    await store.putBlob({ name: `${object}/0` }, secret);
    await store.putBlob(
      { name: object },
      new TextEncoder().encode(JSON.stringify({ chunks: 1, sizeBytes: secret.length })),
    );
    const revision = async () => (await store.info(`${object}/0`))?.revision ?? 0;
    const before = await revision();
    const unchanged = async () => (await revision()) !== before;
    const js = jetstream(mallory, { timeout: 3_000 });
    // Directly: the store is a stream like any other, and mallory has no JetStream API on it.
    let read: Uint8Array | null = null;
    await refused(
      "read a checkpoint copy from the object store",
      async () => {
        read = await (await new Objm(js).open(OBJECT_BUCKETS.checkpoints)).getBlob(`${object}/0`);
        return read;
      },
      async () => read !== null,
    );
    await refused(
      "overwrite a checkpoint copy in the object store",
      async () => (await new Objm(js).open(OBJECT_BUCKETS.checkpoints, false)).putBlob({ name: `${object}/0` }, secret),
      unchanged,
    );
    await refused(
      "publish a chunk straight onto the object store's subjects",
      () => js.publish(`$O.${OBJECT_BUCKETS.checkpoints}.C.forged`, secret),
      unchanged,
    );
    // Through the broker, as the victim: the victim's subjects are not mallory's to publish on.
    for (const op of ["get", "put"] as const) {
      const subject = op === "get" ? subjects.checkpointGet(REGION, VICTIM) : subjects.checkpointPut(REGION, VICTIM);
      await corePublish(`checkpoint ${op} on the victim's broker subject`, mallory, subject, new Uint8Array([1]));
    }
    // Through the broker, as itself, for the victim's task: refused as not held, nothing read or written.
    const ask = async (subject: string, body: Uint8Array) =>
      decode.checkpointReply((await mallory.request(subject, body, { timeout: 5_000 })).data);
    let got: Uint8Array | undefined;
    await refused(
      "read the victim's checkpoint through the broker (own subject)",
      async () => {
        const r = await ask(subjects.checkpointGet(REGION, MALLORY), encode.checkpointGet({ taskId, epoch, seq: 0 }));
        if (!r.ok) throw new Error(r.error);
        got = r.data;
        return r;
      },
      async () => got !== undefined && got.length > 0,
    );
    await refused(
      "overwrite the victim's checkpoint through the broker (own subject)",
      async () => {
        const r = await ask(
          subjects.checkpointPut(REGION, MALLORY),
          encode.checkpointChunk({
            taskId,
            epoch,
            name: "step-1",
            seq: 0,
            data: new TextEncoder().encode("poisoned"),
            sizeBytes: 8,
            chunks: 1,
            last: true,
          }),
        );
        if (!r.ok) throw new Error(r.error);
        return r;
      },
      unchanged,
    );
    expect(new TextDecoder().decode((await store.getBlob(`${object}/0`))!)).toBe("victim-checkpoint-weights");
  });

  it("the victim's job still finishes and is billed from its own agent's reports; 0 leaked, 0 unexpected allows", async () => {
    writeFileSync(gate, "");
    const done = await waitForState(h, jobId, "SUCCEEDED");
    expect(done.tasks[0]!.agentId).toBe(VICTIM);
    const reports = await readUsageReports(h.store.js, h.store.jsm, taskId, VICTIM);
    expect(reports.length).toBeGreaterThan(0);
    expect(reports.every((r) => r.agentId === VICTIM && r.sequence !== 987_654)).toBe(true);
    const rows = table.list();
    expect(rows.length).toBeGreaterThanOrEqual(30);
    for (const row of rows) expect(row, row.attack).toMatchObject({ leaked: 0, unexpectedAllows: 0 });
    expect(table.failures()).toBe(0);
  });
});
