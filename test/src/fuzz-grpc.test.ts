/**
 * Generated hostile input over every RPC of every capa service (fast-check), through a generic grpc-js client
 * whose serialisers pass raw bytes, so malformed protobuf reaches the server as sent: random bytes, valid
 * requests truncated or with a byte flipped, every varint field set to ±2^63 and 2^64-1, and typed specs with one
 * poisoned field. Every request must be answered with a status (never INTERNAL/UNKNOWN; INVALID_ARGUMENT names a
 * field path or `request`), the scheduler keeps serving, and no KV bucket is written.
 */
import * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import {
  type Client,
  credentials,
  Metadata,
  type MethodDefinition,
  makeGenericClientConstructor,
  type ServiceDefinition,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, rpc, spec, startHarness } from "./scheduler-harness.js";

const SERVICES: [string, ServiceDefinition][] = [
  ["JobService", pb.JobServiceService as unknown as ServiceDefinition],
  ["OperatorService", pb.OperatorServiceService as unknown as ServiceDefinition],
  ["BillingService", pb.BillingServiceService as unknown as ServiceDefinition],
  ["AuthService", pb.AuthServiceService as unknown as ServiceDefinition],
  ["AuditService", pb.AuditServiceService as unknown as ServiceDefinition],
  ["ServiceService", pb.ServiceServiceService as unknown as ServiceDefinition],
  ["ScheduleService", pb.ScheduleServiceService as unknown as ServiceDefinition],
];

interface RawMethod {
  path: string;
  name: string;
  stream: boolean;
  client: Client & Record<string, unknown>;
  /** A valid request of this method, encoded (for the truncate / flip mutations). */
  sample: Buffer;
}

/** `spec.template.env[BAD NAME]: …`, `states[0]: …`, `request: malformed protobuf …`. */
const FIELD_PATH = /^[a-z_][a-z0-9_]*(\[[^\]]*\])?(\.[a-z_][a-z0-9_]*(\[[^\]]*\])?)*: /;

/** How many google.rpc.BadRequest field violations a failure's trailers carry. */
function violationsOf(trailers: Metadata | undefined): unknown[] {
  const raw = trailers?.get("grpc-status-details-bin")[0];
  if (!raw || typeof raw === "string") return [];
  return pb.RpcStatus.decode(raw)
    .details.filter((d) => d.typeUrl.endsWith("/google.rpc.BadRequest"))
    .flatMap((d) => pb.BadRequest.decode(d.value).fieldViolations);
}

function varint(value: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

describe("generated hostile input over all RPCs", () => {
  let h: Harness;
  const methods: RawMethod[] = [];
  let tenantToken = "";
  const codes = new Map<string, number>();
  const bad: string[] = [];
  /** Mutating calls that were accepted: none may be, every request here is invalid or hostile. */
  const accepted: string[] = [];
  let sent = 0;
  let malformed = 0;

  beforeAll(async () => {
    h = await startHarness();
    tenantToken = await h.mintKey("tenant", { tenant: "fuzz" });
    for (const [service, def] of SERVICES) {
      const raw: Record<string, MethodDefinition<Buffer, Buffer>> = {};
      for (const [name, m] of Object.entries(def) as [string, MethodDefinition<unknown, unknown>][])
        raw[name] = {
          ...m,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        } as MethodDefinition<Buffer, Buffer>;
      const Ctor = makeGenericClientConstructor(raw, service);
      const client = new Ctor(h.scheduler.grpcAddress, credentials.createInsecure()) as Client &
        Record<string, unknown>;
      for (const [name, m] of Object.entries(def) as [string, MethodDefinition<unknown, unknown>][])
        methods.push({ path: m.path, name, stream: m.responseStream, client, sample: sampleOf(m) });
    }
  });

  afterAll(async () => {
    for (const c of new Set(methods.map((m) => m.client))) c.close();
    await h?.stop();
  });

  /** Last sequence of every KV bucket's stream except the leader lease (renewed on a timer). */
  async function kvSequences(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for await (const s of h.store.jsm.streams.list()) {
      if (!s.config.name.startsWith("KV_") || s.config.name === "KV_capa_leader") continue;
      out[s.config.name] = s.state.last_seq;
    }
    return out;
  }

  /** Sends raw bytes to a method with a credential; resolves with the status (or OK) and checks it. */
  function send(m: RawMethod, bytes: Uint8Array, admin: boolean, what: string): Promise<void> {
    const md = new Metadata();
    md.set("authorization", `Bearer ${admin ? h.adminToken : tenantToken}`);
    const deadline = Date.now() + 15_000;
    sent++;
    let answered = false;
    const record = (code: number, details: string, trailers?: Metadata) => {
      if (answered) return;
      answered = true;
      if (code === status.OK && /SubmitJob|CancelJob|Set|Drain|CreateKey|RevokeKey/.test(m.path))
        accepted.push(`${m.path} ${what}`);
      const name = status[code] ?? String(code);
      codes.set(name, (codes.get(name) ?? 0) + 1);
      if (code === status.INTERNAL || code === status.UNKNOWN || code === status.DEADLINE_EXCEEDED)
        bad.push(`${m.path} ${what}: ${name} ${details}`);
      if (code === status.INVALID_ARGUMENT && details.startsWith("request: malformed protobuf")) malformed++;
      if (code === status.INVALID_ARGUMENT && violationsOf(trailers).length === 0)
        bad.push(`${m.path} ${what}: INVALID_ARGUMENT without a google.rpc.BadRequest: ${details}`);
      if (code === status.INVALID_ARGUMENT && !FIELD_PATH.test(details))
        bad.push(`${m.path} ${what}: INVALID_ARGUMENT without a field path: ${details}`);
    };
    const buffer = Buffer.from(bytes);
    return new Promise((resolve) => {
      if (m.stream) {
        const call = (m.client[m.name] as (b: Buffer, md: Metadata, o: object) => NodeJS.EventEmitter)(buffer, md, {
          deadline,
        });
        call.on("data", () => {});
        call.on("error", (e: ServiceError) => {
          record(e.code, e.details, e.metadata);
          resolve();
        });
        call.on("end", () => {
          record(status.OK, "");
          resolve();
        });
      } else {
        (m.client[m.name] as (b: Buffer, md: Metadata, o: object, cb: (e: ServiceError | null) => void) => void)(
          buffer,
          md,
          { deadline },
          (e) => {
            record(e ? e.code : status.OK, e ? e.details : "", e?.metadata);
            resolve();
          },
        );
      }
    });
  }

  it("answers ≥ 1,000 hostile requests with a status, writes no KV, and keeps serving", async () => {
    const before = await kvSequences();
    const method = fc.integer({ min: 0, max: methods.length - 1 }).map((i) => methods[i]!);

    // 1. Random bytes to every method, with a tenant key and with the admin key.
    await fc.assert(
      fc.asyncProperty(method, fc.uint8Array({ maxLength: 256 }), fc.boolean(), async (m, bytes, admin) => {
        await send(m, bytes, admin, "random bytes");
      }),
      { numRuns: 400, seed: 7 },
    );
    // 2. Valid requests truncated, or with a byte flipped.
    await fc.assert(
      fc.asyncProperty(method, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), async (m, at, xor, cut) => {
        const b = Buffer.from(m.sample);
        if (b.length === 0) return send(m, Uint8Array.of(0x0a, 0x05, 0x01), true, "length past the end");
        const i = at % b.length;
        if (cut) return send(m, b.subarray(0, i), true, `truncated at ${i}`);
        b[i] = b[i]! ^ xor;
        return send(m, b, true, `byte ${i} flipped`);
      }),
      { numRuns: 300, seed: 11 },
    );
    // 3. Every varint field 1..8 of every method set to int64 extremes (±2^63, 2^64-1, 2^53+1).
    for (const m of methods)
      for (let field = 1; field <= 8; field++)
        for (const value of [1n << 63n, -(1n << 63n), (1n << 64n) - 1n, (1n << 53n) + 1n])
          await send(m, Uint8Array.from([(field << 3) | 0, ...varint(value)]), true, `field ${field} = ${value}`);
    // 4. Typed specs with one poisoned field, to SubmitJob, Quote and Simulate.
    const poisons: [string, (s: pb.JobSpec, n: number) => void][] = [
      [
        "replicas",
        (s, n) => {
          s.replicas = 1025 + n;
        },
      ],
      [
        "gpus_per_replica",
        (s, n) => {
          s.gpusPerReplica = -1 - n;
        },
      ],
      [
        "max_price",
        (s, n) => {
          s.maxPriceMicrosPerGpuHour = -1 - n;
        },
      ],
      [
        "budget",
        (s, n) => {
          s.budgetMicros = -1 - n;
        },
      ],
      [
        "priority",
        (s, n) => {
          s.priority = 1001 + n;
        },
      ],
      [
        "command",
        (s) => {
          s.template!.command = [];
        },
      ],
      [
        "env name",
        (s) => {
          s.template!.env = { "BAD NAME": "x" };
        },
      ],
      [
        "secret name",
        (s) => {
          s.template!.secretEnvNames = ["NOT_IN_ENV"];
        },
      ],
      [
        "name",
        (s) => {
          s.name = "\u0000bad name";
        },
      ],
      [
        "kill grace",
        (s, n) => {
          s.template!.killGraceSeconds = 3601 + n;
        },
      ],
    ];
    const target = (name: string) => methods.find((m) => m.path.endsWith(`/${name}`))!;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: poisons.length - 1 }),
        fc.nat({ max: 1_000_000 }),
        fc.string({ maxLength: 40 }),
        fc.constantFrom("SubmitJob", "Quote", "Simulate"),
        async (p, n, requestId, rpcName) => {
          const s = spec({ name: "fuzz" });
          poisons[p]![1](s, n);
          const bytes =
            rpcName === "SubmitJob"
              ? pb.SubmitJobRequest.encode({ requestId, tenant: "", spec: s }).finish()
              : rpcName === "Quote"
                ? pb.QuoteRequest.encode({ tenant: "", spec: s }).finish()
                : pb.SimulateRequest.encode({ spec: s, profile: "", seed: n }).finish();
          await send(target(rpcName), bytes, rpcName === "Simulate", `poisoned ${poisons[p]![0]}`);
        },
      ),
      { numRuns: 300, seed: 13 },
    );

    console.log(
      `hostile gRPC requests: ${sent} sent over ${methods.length} RPCs; answers: ${[...codes]
        .sort((a, b) => b[1] - a[1])
        .map(([c, n]) => `${c} ${n}`)
        .join(", ")} (${malformed} of the INVALID_ARGUMENT: malformed protobuf)`,
    );
    expect(malformed).toBeGreaterThan(100);
    expect(sent).toBeGreaterThanOrEqual(1000);
    expect(bad).toEqual([]);
    expect(accepted).toEqual([]);
    expect(await kvSequences()).toEqual(before);
    // Still serving: a valid call answers.
    await waitFor(
      async () =>
        (await rpc<pb.ListJobsResponse>((cb) =>
          h.jobs.listJobs({ tenant: "", states: [], limit: 0, pageToken: "" }, cb),
        )) !== undefined,
    );
  }, 600_000);
});

/** One request per method that decodes (defaults, ids that do not exist, a spec where there is one), encoded. */
function sampleOf(m: MethodDefinition<unknown, unknown>): Buffer {
  const name = m.path.split("/").pop()!;
  const partial: Record<string, unknown> = {
    jobId: "jfuzz000000000000",
    tenant: "fuzz",
    agentId: "a-1",
    keyId: "0123456789abcdef",
  };
  // SubmitJob's sample breaks three rules, so no single flipped byte makes it a job someone could submit.
  if (name === "SubmitJob") partial.spec = spec({ name: "sample", replicas: 5000, gpusPerReplica: 100 }, []);
  else if (["Quote", "Simulate"].includes(name)) partial.spec = spec({ name: "sample" });
  // The decoder of empty bytes gives the request's default shape; fill the fields it has.
  const value = m.requestDeserialize(Buffer.alloc(0)) as Record<string, unknown>;
  for (const [k, v] of Object.entries(partial)) if (k in value) value[k] = v;
  return m.requestSerialize(value);
}
