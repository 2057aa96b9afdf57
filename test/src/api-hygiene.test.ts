/**
 * The gRPC API as a client in another language meets it, on a real nats-server and a real channel: server-side
 * defaults (a spec with only GPUs and a command), GPU model names normalised at the edge for submit, quote and
 * offers, google.rpc.BadRequest details in `grpc-status-details-bin`, page tokens on every List RPC, reflection
 * serving the real descriptor set (a generic client resolves files by name and calls a service it learnt from
 * reflection alone), and fail_if_unschedulable_after_seconds.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import * as pb from "@capa/api";
import { waitFor } from "@capa/testkit";
import {
  type ChannelCredentials,
  type ClientDuplexStream,
  credentials,
  type GrpcObject,
  loadPackageDefinition,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import { loadFileDescriptorSetFromBuffer, loadSync } from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  FakeAgent,
  getJob,
  type Harness,
  rpc,
  rpcError,
  startHarness,
  stateName,
  withToken,
} from "./scheduler-harness.js";

/** What a client that only knows google/rpc/*.proto reads from a failed call. */
function badRequestOf(err: ServiceError): { code: number; message: string; fields: string[]; descriptions: string[] } {
  const raw = err.metadata.get("grpc-status-details-bin")[0];
  if (!raw || typeof raw === "string") throw new Error("no grpc-status-details-bin trailer");
  const st = pb.RpcStatus.decode(raw);
  const details = st.details.filter((d) => d.typeUrl === "type.googleapis.com/google.rpc.BadRequest");
  const violations = details.flatMap((d) => pb.BadRequest.decode(d.value).fieldViolations);
  return {
    code: st.code,
    message: st.message,
    fields: violations.map((v) => v.field),
    descriptions: violations.map((v) => v.description),
  };
}

/** A spec as a minimal client sends it: GPUs and a command, every other field at its proto3 zero value. */
function minimal(gpus: number, command: string[] = ["true"]): pb.JobSpec {
  return pb.JobSpec.fromPartial({ gpusPerReplica: gpus, template: { command } });
}

describe("API hygiene: defaults, GPU names, error details, paging", () => {
  let h: Harness;
  const agents: FakeAgent[] = [];
  beforeAll(async () => {
    h = await startHarness();
    for (const id of ["hyg-a1", "hyg-a2", "hyg-a3"]) agents.push(new FakeAgent(h, id).start());
    await waitFor(
      async () =>
        (await rpc<pb.ListAgentsResponse>((cb) => h.operator.listAgents(pb.ListAgentsRequest.fromPartial({}), cb)))
          .agents.length === 3,
      { what: "three agents" },
    );
  });
  afterAll(async () => {
    for (const a of agents) a.silence();
    await h?.stop();
  });

  it("accepts a SubmitJob with only GPUs and a command, applying the documented defaults", async () => {
    const res = await rpc<pb.SubmitJobResponse>((cb) =>
      h.jobs.submitJob(pb.SubmitJobRequest.fromPartial({ spec: minimal(1, ["echo", "hi"]) }), cb),
    );
    const job = res.job!;
    expect(job.tenant).toBe("default");
    expect(job.spec).toMatchObject({ kind: pb.JobKind.JOB_KIND_BATCH, replicas: 1, gpusPerReplica: 1 });
    expect(job.spec!.template!.killGraceSeconds).toBe(10);
    const done = await waitFor(async () => {
      const j = await getJob(h, job.id);
      return stateName(j.state) === "PLACED" || stateName(j.state) === "RUNNING" ? j : undefined;
    });
    expect(done.tasks[0]?.agentId).toMatch(/^hyg-a/);
  });

  it("answers Quote and Simulate for a spec with only GPUs", async () => {
    const q = await rpc<pb.QuoteResponse>((cb) =>
      h.jobs.quote(pb.QuoteRequest.fromPartial({ spec: pb.JobSpec.fromPartial({ gpusPerReplica: 2 }) }), cb),
    );
    expect(q.feasibleOffers).toBeGreaterThan(0);
    const sim = await rpc<pb.SimulateResponse>((cb) =>
      h.operator.simulate(pb.SimulateRequest.fromPartial({ spec: pb.JobSpec.fromPartial({ gpusPerReplica: 2 }) }), cb),
    );
    expect(sim.explanation?.outcome).toBe("placed");
  });

  it("normalises GPU model names at submit, so gpu_models=['h100'] places on H100-80GB", async () => {
    const res = await rpc<pb.SubmitJobResponse>((cb) =>
      h.jobs.submitJob(
        pb.SubmitJobRequest.fromPartial({ spec: { ...minimal(1), gpuModels: ["h100"] }, tenant: "names" }),
        cb,
      ),
    );
    expect(res.job!.spec!.gpuModels).toEqual(["H100-80GB"]);
    const placed = await waitFor(async () => {
      const j = await getJob(h, res.job!.id);
      return j.tasks[0]?.gpuModel === "H100-80GB" ? j : undefined;
    });
    expect(placed.tasks[0]?.agentId).toMatch(/^hyg-a/);
    const nvidia = await rpc<pb.SubmitJobResponse>((cb) =>
      h.jobs.submitJob(
        pb.SubmitJobRequest.fromPartial({ spec: { ...minimal(1), gpuModels: ["NVIDIA H100 80GB HBM3"] } }),
        cb,
      ),
    );
    expect(nvidia.job!.spec!.gpuModels).toEqual(["H100-80GB"]);
  });

  it("refuses an unknown GPU model in submit, quote and offers with INVALID_ARGUMENT listing the known ones", async () => {
    const submitErr = await rpcError((cb) =>
      h.jobs.submitJob(pb.SubmitJobRequest.fromPartial({ spec: { ...minimal(1), gpuModels: ["h1000"] } }), cb),
    );
    expect(submitErr.code).toBe(status.INVALID_ARGUMENT);
    expect(submitErr.details).toContain("H100-80GB");
    expect(badRequestOf(submitErr).fields).toEqual(["spec.gpu_models[0]"]);
    const quoteErr = await rpcError((cb) =>
      h.jobs.quote(pb.QuoteRequest.fromPartial({ spec: { ...minimal(1), gpuModels: ["h1000"] } }), cb),
    );
    expect(quoteErr.code).toBe(status.INVALID_ARGUMENT);
    expect(badRequestOf(quoteErr).fields).toEqual(["spec.gpu_models[0]"]);
    const offersErr = await rpcError((cb) =>
      h.jobs.listOffers(pb.ListOffersRequest.fromPartial({ gpuModel: "h1000" }), cb),
    );
    expect(offersErr.code).toBe(status.INVALID_ARGUMENT);
    expect(badRequestOf(offersErr).fields).toEqual(["gpu_model"]);
    // ...and the same spelling ListOffers accepts, normalised by the same function.
    const offers = await rpc<pb.ListOffersResponse>((cb) =>
      h.jobs.listOffers(pb.ListOffersRequest.fromPartial({ gpuModel: "h100-80gb" }), cb),
    );
    expect(offers.offers.map((o) => o.gpuModel)).toEqual(["H100-80GB"]);
  });

  it("sends a google.rpc.Status with BadRequest field violations, keeping the readable message", async () => {
    const err = await rpcError((cb) =>
      h.jobs.submitJob(
        pb.SubmitJobRequest.fromPartial({
          spec: pb.JobSpec.fromPartial({ gpusPerReplica: -1, replicas: -2, template: { command: ["true"] } }),
        }),
        cb,
      ),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain("spec.gpus_per_replica: must be an integer in 0..64, got -1");
    const details = badRequestOf(err);
    expect(details.code).toBe(status.INVALID_ARGUMENT);
    expect(details.message).toBe(err.details);
    expect(details.fields).toEqual(["spec.replicas", "spec.gpus_per_replica"]);
    expect(details.descriptions[1]).toBe("must be an integer in 0..64, got -1");
    // Streams too.
    const stream = h.jobs.watchJob({ jobId: "not a job id" });
    const streamErr = await new Promise<ServiceError>((resolve) => {
      stream.on("error", resolve);
      stream.on("data", () => {});
    });
    expect(badRequestOf(streamErr).fields).toEqual(["job_id"]);
  });

  it("pages ListJobs with tokens, newest first, without repeats, and refuses a token replayed with other filters", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await rpc<pb.SubmitJobResponse>((cb) =>
        h.jobs.submitJob(pb.SubmitJobRequest.fromPartial({ tenant: "pager", spec: minimal(64) }), cb),
      );
      ids.push(r.job!.id);
    }
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = await rpc<pb.ListJobsResponse>((cb) =>
        h.jobs.listJobs(pb.ListJobsRequest.fromPartial({ tenant: "pager", limit: 2, pageToken: token }), cb),
      );
      seen.push(...page.jobs.map((j) => j.id));
      token = page.nextPageToken;
      pages++;
    } while (token !== "" && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
    const first = await rpc<pb.ListJobsResponse>((cb) =>
      h.jobs.listJobs(pb.ListJobsRequest.fromPartial({ tenant: "pager", limit: 2 }), cb),
    );
    const replay = await rpcError((cb) =>
      h.jobs.listJobs(
        pb.ListJobsRequest.fromPartial({ tenant: "other", limit: 2, pageToken: first.nextPageToken }),
        cb,
      ),
    );
    expect(replay.code).toBe(status.INVALID_ARGUMENT);
    expect(badRequestOf(replay).fields).toEqual(["page_token"]);
    const garbage = await rpcError((cb) =>
      h.jobs.listJobs(pb.ListJobsRequest.fromPartial({ tenant: "pager", pageToken: "%%%" }), cb),
    );
    expect(garbage.code).toBe(status.INVALID_ARGUMENT);
  });

  it("pages ListAgents and ListOffers with tokens", async () => {
    const agentIds: string[] = [];
    let token = "";
    for (let i = 0; i < 5; i++) {
      const page = await rpc<pb.ListAgentsResponse>((cb) =>
        h.operator.listAgents(pb.ListAgentsRequest.fromPartial({ limit: 1, pageToken: token }), cb),
      );
      agentIds.push(...page.agents.map((a) => a.agentId));
      token = page.nextPageToken;
      if (token === "") break;
    }
    expect(agentIds).toEqual(["hyg-a1", "hyg-a2", "hyg-a3"]);
    const all = await rpc<pb.ListOffersResponse>((cb) =>
      h.jobs.listOffers(pb.ListOffersRequest.fromPartial({ raw: true }), cb),
    );
    expect(all.nextPageToken).toBe("");
    const one = await rpc<pb.ListOffersResponse>((cb) =>
      h.jobs.listOffers(pb.ListOffersRequest.fromPartial({ limit: 1, interruptible: true }), cb),
    );
    expect(one.offers).toHaveLength(1);
    // One (region, model) group: the first page is the last one.
    expect(one.nextPageToken).toBe("");
  });
});

describe("fail_if_unschedulable_after_seconds", () => {
  let h: Harness;
  let agent: FakeAgent;
  beforeAll(async () => {
    h = await startHarness();
    agent = new FakeAgent(h, "small-a1", "eu-west", 8).start();
  });
  afterAll(async () => {
    agent.silence();
    await h?.stop();
  });

  it("says UNSCHEDULABLE for a job no agent could ever hold, and fails it once the option's time is up", async () => {
    // 64 GPUs on a fleet of 8-GPU agents, no spanning: it can never fit.
    const waiting = await rpc<pb.SubmitJobResponse>((cb) =>
      h.jobs.submitJob(pb.SubmitJobRequest.fromPartial({ spec: minimal(64) }), cb),
    );
    const failing = await rpc<pb.SubmitJobResponse>((cb) =>
      h.jobs.submitJob(
        pb.SubmitJobRequest.fromPartial({ spec: { ...minimal(64), failIfUnschedulableAfterSeconds: 1 } }),
        cb,
      ),
    );
    const stillWaiting = await waitFor(async () => {
      const j = await getJob(h, waiting.job!.id);
      return /^UNSCHEDULABLE: no agent could ever hold this job/.test(j.reason) ? j : undefined;
    });
    expect(stateName(stillWaiting.state)).toBe("PENDING");
    const failed = await waitFor(
      async () => {
        const j = await getJob(h, failing.job!.id);
        return stateName(j.state) === "FAILED" ? j : undefined;
      },
      { what: "the job with fail_if_unschedulable_after_seconds=1 failed", timeoutMs: 30_000 },
    );
    expect(failed.reason).toMatch(/^UNSCHEDULABLE: .*failed after 1s/);
    // The one without the option keeps waiting.
    expect(stateName((await getJob(h, waiting.job!.id)).state)).toBe("PENDING");
  });
});

interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

interface ReflectionClient {
  ServerReflectionInfo(): ClientDuplexStream<Record<string, string>, ReflectionResponse>;
  close(): void;
}

/** A reflection client that knows nothing of capa: only grpc/reflection/v1/reflection.proto. */
class GenericReflection {
  private readonly client: ReflectionClient;
  constructor(address: string) {
    const dir = join(createRequire(import.meta.url).resolve("@grpc/reflection"), "../../proto");
    const def = loadSync("grpc/reflection/v1/reflection.proto", { includeDirs: [dir] });
    const grpcPkg = loadPackageDefinition(def) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: new (a: string, c: ChannelCredentials) => ReflectionClient } } };
    };
    this.client = new grpcPkg.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
  }
  ask(request: Record<string, string>): Promise<ReflectionResponse> {
    const call = this.client.ServerReflectionInfo();
    return new Promise((resolve, reject) => {
      call.on("data", (r: ReflectionResponse) => {
        resolve(r);
        call.end();
      });
      call.on("error", reject);
      call.write(request);
    });
  }
  /** The files a request returns, each file's name, and a descriptor set of them (like grpcurl builds). */
  async files(request: Record<string, string>): Promise<{ names: string[]; set: Buffer }> {
    const r = await this.ask(request);
    if (r.errorResponse) throw new Error(`reflection: ${r.errorResponse.errorMessage}`);
    const protos = r.fileDescriptorResponse!.fileDescriptorProto.map((b) => Buffer.from(b));
    // FileDescriptorSet = repeated FileDescriptorProto file = 1.
    const set = Buffer.concat(protos.flatMap((p) => [Buffer.from([0x0a]), varint(p.length), p]));
    return { names: protos.map(fileName), set };
  }
  close(): void {
    this.client.close();
  }
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

/** FileDescriptorProto.name is field 1 (a string), which protoc and buf write first. */
function fileName(p: Buffer): string {
  if (p[0] !== 0x0a) throw new Error("descriptor without a leading name");
  let len = 0;
  let at = 1;
  for (let shift = 0; ; shift += 7) {
    const b = p[at++]!;
    len |= (b & 0x7f) << shift;
    if (b < 0x80) break;
  }
  return p.subarray(at, at + len).toString("utf8");
}

describe("server reflection serves the real descriptor set", () => {
  let h: Harness;
  let reflection: GenericReflection;
  beforeAll(async () => {
    h = await startHarness();
    reflection = new GenericReflection(h.scheduler.grpcAddress);
  });
  afterAll(async () => {
    reflection?.close();
    await h?.stop();
  });

  it("lists the capa services and grpc.health.v1.Health", async () => {
    const r = await reflection.ask({ listServices: "*" });
    const names = r.listServicesResponse!.service.map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "capa.v1.JobService",
        "capa.v1.OperatorService",
        "capa.v1.BillingService",
        "grpc.health.v1.Health",
      ]),
    );
  });

  it("resolves capa/v1/jobs.proto by its real name (with its imports) and calls JobService from it alone", async () => {
    const { names, set } = await reflection.files({ fileByFilename: "capa/v1/jobs.proto" });
    expect(names[0]).toBe("capa/v1/jobs.proto");
    expect(names).toContain("capa/v1/types.proto");
    const pkg = loadPackageDefinition(
      loadFileDescriptorSetFromBuffer(set, { enums: String, arrays: true }),
    ) as GrpcObject;
    const JobService = ((pkg.capa as GrpcObject).v1 as GrpcObject).JobService as unknown as new (
      a: string,
      c: ChannelCredentials,
      o: object,
    ) => { ListJobs(req: object, cb: (e: ServiceError | null, r: { jobs: unknown[] }) => void): void; close(): void };
    const client = new JobService(h.scheduler.grpcAddress, credentials.createInsecure(), withToken(h.adminToken));
    const listed = await rpc<{ jobs: unknown[] }>((cb) => client.ListJobs({ tenant: "nobody" }, cb));
    expect(listed.jobs).toEqual([]);
    client.close();
    const unknown = await reflection.ask({ fileByFilename: "capa_v1.proto" });
    expect(unknown.errorResponse?.errorCode).toBe(status.NOT_FOUND);
  });

  it("resolves grpc.health.v1.Health by symbol and checks health with what reflection returned", async () => {
    const { names, set } = await reflection.files({ fileContainingSymbol: "grpc.health.v1.Health" });
    expect(names[0]).toBe("grpc/health/v1/health.proto");
    const pkg = loadPackageDefinition(
      loadFileDescriptorSetFromBuffer(set, { enums: String, arrays: true }),
    ) as GrpcObject;
    const Health = (((pkg.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject).Health as unknown as new (
      a: string,
      c: ChannelCredentials,
    ) => { Check(req: object, cb: (e: ServiceError | null, r: { status: string }) => void): void; close(): void };
    const client = new Health(h.scheduler.grpcAddress, credentials.createInsecure());
    const res = await rpc<{ status: string }>((cb) => client.Check({ service: "capa.v1.JobService" }, cb));
    expect(res.status).toBe("SERVING");
    client.close();
    const statusFile = await reflection.files({ fileByFilename: "google/rpc/status.proto" });
    expect(statusFile.names[0]).toBe("google/rpc/status.proto");
    expect(statusFile.names).toContain("google/protobuf/any.proto");
  });
});
