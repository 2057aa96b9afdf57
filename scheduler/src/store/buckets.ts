/**
 * Typed views of the KV buckets. Layout:
 * - capa_jobs/<jobId>            protobuf Job
 * - capa_jobs/explain.<jobId>    JSON Explanation of the job's last plan (two tokens: job watches use `*`)
 * - capa_agents/<agentId>        JSON AgentRecord
 * - capa_allocs/<agentId>        protobuf AgentAssignments (the agent's desired state)
 * - capa_requests/<tenant>.<h>   JSON RequestRecord
 * - capa_policy/active           JSON PolicyRecord; capa_policy/profile.<name> JSON ProfileDocument
 * - capa_leader/scheduler        JSON LeaseRecord
 */
import { decode, encode, jsonCodec, type Store, TypedKv } from "@capa/bus";
import type { AgentAssignments, Job } from "@capa/domain";
import type { Explanation } from "../planner/engine.js";
import type { AgentRecord, LeaseRecord, PolicyRecord, ProfileDocument, RequestRecord } from "./records.js";

export interface Buckets {
  jobs: TypedKv<Job>;
  explanations: TypedKv<Explanation>;
  agents: TypedKv<AgentRecord>;
  allocs: TypedKv<AgentAssignments>;
  requests: TypedKv<RequestRecord>;
  policy: TypedKv<PolicyRecord>;
  profiles: TypedKv<ProfileDocument>;
  leader: TypedKv<LeaseRecord>;
}

export const EXPLAIN_PREFIX = "explain.";
export const POLICY_KEY = "active";
export const PROFILE_PREFIX = "profile.";
export const LEASE_KEY = "scheduler";

export function buckets(store: Store): Buckets {
  return {
    jobs: new TypedKv(store.jobs, { encode: encode.job, decode: decode.job }),
    explanations: new TypedKv(store.jobs, jsonCodec<Explanation>()),
    agents: new TypedKv(store.agents, jsonCodec<AgentRecord>()),
    allocs: new TypedKv(store.allocs, { encode: encode.assignments, decode: decode.assignments }),
    requests: new TypedKv(store.requests, jsonCodec<RequestRecord>()),
    policy: new TypedKv(store.policy, jsonCodec<PolicyRecord>()),
    profiles: new TypedKv(store.policy, jsonCodec<ProfileDocument>()),
    leader: new TypedKv(store.leader, jsonCodec<LeaseRecord>()),
  };
}
