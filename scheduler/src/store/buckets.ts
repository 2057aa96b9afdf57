/**
 * Typed views of the KV buckets. Layout:
 * - capa_jobs/<jobId>            protobuf Job
 * - capa_jobs/explain.<jobId>    JSON Explanation of the job's last plan (two tokens: job watches use `*`)
 * - capa_agents/<agentId>        JSON AgentRecord
 * - capa_allocs/<agentId>        protobuf AgentAssignments (the agent's desired state)
 * - capa_requests/<tenant>.<h>   JSON RequestRecord (and capa_requests_1, _2: the request registers' quorum)
 * - capa_policy/active           JSON PolicyRecord; capa_policy/profile.<name> JSON ProfileDocument
 * - capa_leader/scheduler        JSON LeaseRecord
 */
import { decode, encode, jsonCodec, type KvObserver, type Store, TypedKv } from "@capa/bus";
import type { AgentAssignments, Job } from "@capa/domain";
import type { Explanation } from "../planner/engine.js";
import type { AgentRecord, LeaseRecord, PolicyRecord, ProfileDocument, RequestRecord } from "./records.js";

export interface Buckets {
  jobs: TypedKv<Job>;
  explanations: TypedKv<Explanation>;
  agents: TypedKv<AgentRecord>;
  allocs: TypedKv<AgentAssignments>;
  requests: TypedKv<RequestRecord>;
  /** The request-id registers (`requests` first): see scheduler/src/requests. */
  requestRegisters: TypedKv<RequestRecord>[];
  policy: TypedKv<PolicyRecord>;
  profiles: TypedKv<ProfileDocument>;
  leader: TypedKv<LeaseRecord>;
}

export const EXPLAIN_PREFIX = "explain.";
export const POLICY_KEY = "active";
export const PROFILE_PREFIX = "profile.";
export const LEASE_KEY = "scheduler";

/** `observe(bucket)` gives each bucket's views an observer (metrics); none by default. */
export function buckets(store: Store, observe: (bucket: string) => KvObserver | undefined = () => undefined): Buckets {
  const o = {
    jobs: observe("jobs"),
    agents: observe("agents"),
    allocs: observe("allocs"),
    requests: observe("requests"),
    policy: observe("policy"),
    leader: observe("leader"),
  };
  const requests = new TypedKv(store.requests, jsonCodec<RequestRecord>(), o.requests);
  return {
    jobs: new TypedKv(store.jobs, { encode: encode.job, decode: decode.job }, o.jobs),
    explanations: new TypedKv(store.jobs, jsonCodec<Explanation>(), o.jobs),
    agents: new TypedKv(store.agents, jsonCodec<AgentRecord>(), o.agents),
    allocs: new TypedKv(store.allocs, { encode: encode.assignments, decode: decode.assignments }, o.allocs),
    requests,
    requestRegisters: [
      requests,
      ...store.requestRegisters.slice(1).map((kv) => new TypedKv(kv, jsonCodec<RequestRecord>(), o.requests)),
    ],
    policy: new TypedKv(store.policy, jsonCodec<PolicyRecord>(), o.policy),
    profiles: new TypedKv(store.policy, jsonCodec<ProfileDocument>(), o.policy),
    leader: new TypedKv(store.leader, jsonCodec<LeaseRecord>(), o.leader),
  };
}
