/** Pure helpers over adverts: validation, the change fingerprint, and the engine's view of an agent. */
import { type Advert, type Heartbeat, residencyOfRegion } from "@capa/domain";
import type { AgentView } from "../planner/engine.js";
import type { AgentRecord } from "../store/records.js";

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_GPUS = 64;

/** Why an advert is refused, or undefined when it is acceptable. `subjectAgentId` is the id in the subject. */
export function advertProblem(advert: Advert, subjectAgentId?: string): string | undefined {
  if (!TOKEN.test(advert.agentId)) return "agent_id is not a token";
  if (!TOKEN.test(advert.region)) return "region is not a token";
  if (subjectAgentId !== undefined && subjectAgentId !== advert.agentId) return "agent_id differs from the subject";
  if (advert.gpus.length > MAX_GPUS) return `more than ${MAX_GPUS} GPUs`;
  const indices = new Set(advert.gpus.map((g) => g.index));
  if (indices.size !== advert.gpus.length) return "duplicate GPU indices";
  if (advert.prices.some((p) => !Number.isSafeInteger(p.onDemandPerHour) || p.onDemandPerHour < 0))
    return "invalid price";
  if ((advert.drivers ?? []).length > 8 || (advert.drivers ?? []).some((d) => !TOKEN.test(d))) return "invalid drivers";
  return undefined;
}

export function heartbeatProblem(hb: Heartbeat, subjectAgentId?: string): string | undefined {
  if (!TOKEN.test(hb.agentId)) return "agent_id is not a token";
  if (subjectAgentId !== undefined && subjectAgentId !== hb.agentId) return "agent_id differs from the subject";
  return undefined;
}

/**
 * Fingerprints by advert object. Adverts are never edited after decoding (the registry replaces records, it does not
 * mutate them), so one object's fingerprint never changes; caching it keeps the liveness pass's `dirty()` (every
 * agent, every tick) and each advert's change check from re-serialising adverts: at 10,000 agents that was a
 * quarter of the scheduler's CPU.
 */
const fingerprints = new WeakMap<Advert, string>();

/** What makes an advert "changed" for persistence: everything but sequence, send time and GPU telemetry. */
export function advertFingerprint(a: Advert): string {
  let fp = fingerprints.get(a);
  if (fp === undefined) {
    fp = computeFingerprint(a);
    fingerprints.set(a, fp);
  }
  return fp;
}

function computeFingerprint(a: Advert): string {
  return JSON.stringify({
    ...a,
    sequence: 0,
    sentAtMs: 0,
    gpus: a.gpus.map((g) => ({
      index: g.index,
      uuid: g.uuid,
      model: g.model,
      vramMib: g.vramMib,
      health: g.health,
      migEnabled: g.migEnabled,
      driverVersion: g.driverVersion,
    })),
    labels: Object.fromEntries(Object.entries(a.labels).sort(([x], [y]) => (x < y ? -1 : 1))),
  });
}

export function agentView(record: AgentRecord, lastSeenMs: number): AgentView {
  const a = record.advert;
  return {
    id: a.agentId,
    region: a.region,
    zone: a.zone,
    provider: a.provider,
    fabricDomain: a.fabricDomain,
    residency: a.residency || residencyOfRegion(a.region),
    labels: { ...a.labels },
    reliability: a.reliability > 0 ? a.reliability : 1,
    gpus: a.gpus.map((g) => ({ index: g.index, model: g.model, vramMib: g.vramMib, healthy: g.health === "ok" })),
    prices: a.prices.map((p) => ({ ...p })),
    lastSeenMs,
    draining: record.draining,
    simulated: a.simulated,
    drivers: a.drivers && a.drivers.length > 0 ? [...a.drivers] : ["process"],
  };
}

export type AgentStatusName = "ready" | "draining" | "lost";

export function agentStatus(record: Pick<AgentRecord, "lost" | "draining">): AgentStatusName {
  return record.lost ? "lost" : record.draining ? "draining" : "ready";
}

/** How long this agent may stay silent: the configured override, else its advertised TTL, else 30 s. */
export function agentTimeoutMs(advert: Advert, overrideMs: number | undefined, defaultMs = 30_000): number {
  if (overrideMs !== undefined) return overrideMs;
  return advert.ttlSeconds > 0 ? advert.ttlSeconds * 1000 : defaultMs;
}
