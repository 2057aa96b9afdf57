/** Shapes of the JSON records the scheduler keeps in KV next to the protobuf jobs and assignments. */
import type { Advert } from "@capa/domain";

/** `capa_agents/<agentId>`: written when the advert changes, on drain, and when the agent is lost or returns. */
export interface AgentRecord {
  advert: Advert;
  draining: boolean;
  lost: boolean;
  /** Scheduler clock when the record last changed. */
  updatedAtMs: number;
}

/**
 * `capa_requests/<tenant>.<sha256(tenant, request_id)>` (and the same key in `capa_requests_1`, `_2` with 3 replicas):
 * claimed (CAS create, scheduler/src/requests) before the job.
 */
export interface RequestRecord {
  jobId: string;
  tenant: string;
  requestId: string;
  /** Digest of the submitted spec: a reused request id with another spec is refused. */
  specDigest: string;
  createdAtMs: number;
}

/** `capa_policy/active`: the active profile and weight overrides. Revision = the KV revision. */
export interface PolicyRecord {
  profile: string;
  weights: Record<string, number>;
  updatedBy: string;
  updatedAtMs: number;
}

/** `capa_policy/profile.<name>`: a custom profile document as submitted (JSON or YAML text). */
export interface ProfileDocument {
  name: string;
  document: string;
  updatedBy: string;
  updatedAtMs: number;
}

/** `capa_leader/scheduler`: the lease. The expiry lives in the value: nats-server 2.9 ignores per-key TTL. */
export interface LeaseRecord {
  holder: string;
  /** Increases every time the lease changes hands; fences a stale leader. */
  term: number;
  expiresAtMs: number;
  acquiredAtMs: number;
  /** The holder's gRPC address as other replicas reach it: followers forward writes there (scheduler/src/ha). */
  address?: string;
}
