/**
 * The partition rule over whole timelines, through the real registry (how heartbeats, adverts and task reports
 * are stamped) and decideLosses (what is lost at each liveness pass): a region's gateways are cut while its
 * heartbeats and reports are read late, as on a loaded machine. The registry's KV and cluster view are stubs:
 * the stamping and the silence view never touch them.
 */
import type { TypedKv } from "@capa/bus";
import type { Advert } from "@capa/domain";
import { describe, expect, it } from "vitest";
import type { ClusterStateApi } from "../planner/engine.js";
import type { AgentRecord } from "../store/records.js";
import { advanceAlive, decideLosses, type RegionCut } from "./partition.js";
import { AgentRegistry } from "./registry.js";

const HEARTBEAT_MS = 2_000;
const TTL_S = 6; // the product's default: 3 heartbeats
const GRACE_MS = 120_000;
const CUT_AT = 100_000;

/** One thing the scheduler does, at the moment it does it (`at`, its clock). */
type Step =
  | { at: number; kind: "heartbeat"; agent: string; sentAt: number }
  | { at: number; kind: "report"; agent: string }
  | { at: number; kind: "pass" };

interface Timeline {
  agents: { id: string; region: string; phaseMs: number }[];
  /** Heartbeats sent from `from` until `until` (or the region's cut), read `latencyMs` after being sent. */
  from: number;
  until: number;
  /** The region cut at CUT_AT: nothing it sends after that is read. */
  cutRegion?: string;
  /** Agents that die (stop sending) at this moment. */
  deaths?: Record<string, number>;
  /** The scheduler's event loop is blocked over [from, to): what arrives meanwhile is read at `to`, in order. */
  stall?: { from: number; to: number; passFirst: boolean };
  /** Messages read later than the others: the heartbeat sent at `sentAt` by `agent` is read at `readAt`. */
  late?: { agent: string; sentAt: number; readAt: number }[];
  /** Task reports folded (and so heard) at these moments, e.g. a JetStream consumer lagging behind. */
  reports?: { agent: string; at: number }[];
  /** The agents' clocks are this far ahead of the scheduler's. */
  skewMs?: Record<string, number>;
  latencyMs?: number;
}

/** Only what the registry reads of an advert to stamp it and build its cluster view. */
function advert(agentId: string, region: string, sentAtMs: number): Advert {
  const fields = { agentId, region, gpus: [], labels: {}, prices: [], sequence: 1, sentAtMs, ttlSeconds: TTL_S };
  return { ...fields, bootId: "b1" } as unknown as Advert;
}

function steps(t: Timeline): Step[] {
  const out: Step[] = [];
  const latency = t.latencyMs ?? 2;
  for (const a of t.agents) {
    const region = a.region;
    for (let sent = t.from + a.phaseMs; sent < t.until; sent += HEARTBEAT_MS) {
      if (region === t.cutRegion && sent >= CUT_AT) break;
      if (t.deaths?.[a.id] !== undefined && sent >= t.deaths[a.id]!) break;
      const late = t.late?.find((l) => l.agent === a.id && l.sentAt === sent);
      let at = late ? late.readAt : sent + latency;
      if (t.stall && at >= t.stall.from && at < t.stall.to) at = t.stall.to;
      out.push({ at, kind: "heartbeat", agent: a.id, sentAt: sent + (t.skewMs?.[a.id] ?? 0) });
    }
  }
  for (const r of t.reports ?? []) out.push({ at: r.at, kind: "report", agent: r.agent });
  // The liveness pass every second; one due during a stall runs when it ends.
  for (let at = t.from + 500; at < t.until; at += 1_000) {
    const due = t.stall && at >= t.stall.from && at < t.stall.to ? t.stall.to : at;
    if (!out.some((s) => s.kind === "pass" && s.at === due)) out.push({ at: due, kind: "pass" });
  }
  // At the same moment: a stall's overdue pass before or after the reads it held up.
  const rank = (s: Step) => (s.kind === "pass" ? (t.stall?.passFirst ? 0 : 2) : 1);
  return out.sort((x, y) => x.at - y.at || rank(x) - rank(y));
}

/** Runs the timeline; each agent lost, with when. */
function run(t: Timeline): Record<string, number> {
  let now = 0;
  const cluster = {
    upsertAgent: () => undefined,
    touchAgent: () => true,
    removeAgent: () => undefined,
  } as unknown as ClusterStateApi;
  const registry = new AgentRegistry(undefined as unknown as TypedKv<AgentRecord>, cluster, () => now, undefined);
  for (const a of t.agents) {
    now = t.from + (t.latencyMs ?? 2);
    registry.onAdvert(advert(a.id, a.region, t.from + (t.skewMs?.[a.id] ?? 0)));
  }
  let cuts: ReadonlyMap<string, RegionCut> = new Map();
  const lost: Record<string, number> = {};
  for (const s of steps(t)) {
    now = s.at;
    if (s.kind === "heartbeat") {
      const region = t.agents.find((a) => a.id === s.agent)!.region;
      registry.onHeartbeat({
        agentId: s.agent,
        region,
        bootId: "b1",
        gpus: [],
        runningTaskIds: [],
        freeGpus: 0,
        sequence: 0,
        sentAtMs: s.sentAt,
      });
    } else if (s.kind === "report") registry.heard(s.agent);
    else {
      const d = decideLosses(registry.silence(), now, GRACE_MS, 2, cuts);
      cuts = d.cuts;
      for (const id of d.lose) {
        lost[id] ??= now;
        registry.markLost(id);
      }
    }
  }
  return lost;
}

const US = [
  { id: "us-1", region: "us-east", phaseMs: 100 }, // last heartbeat before the cut: 98 100
  { id: "us-2", region: "us-east", phaseMs: 1_900 }, // last before the cut: 99 900
];
const EU = [
  { id: "eu-1", region: "eu-west", phaseMs: 700 },
  { id: "eu-2", region: "eu-west", phaseMs: 1_300 },
];
const base = { agents: [...US, ...EU], from: 80_000, until: 150_000, cutRegion: "us-east" };

describe("a cut region on a loaded scheduler: held for the grace, however late its last messages are read", () => {
  it.each<[string, Timeline, Record<string, number>]>([
    ["a quiet cut: the region falls silent together and is held", base, {}],
    [
      // us-2's last heartbeat (sent 100 ms before the cut) waits in a NATS buffer and is read 4.4 s later, after
      // us-1's deadline (98 102 + 6 000), before any pass saw both silent.
      "its last heartbeat read 4.4 s late (buffered in a NATS server or a reconnecting client)",
      { ...base, late: [{ agent: "us-2", sentAt: 99_900, readAt: 104_300 }] },
      {},
    ],
    [
      // The event loop is blocked from 99 s to 104.3 s; the socket's backlog is read before the overdue pass.
      "the scheduler's event loop starved for 5.3 s across the cut, the backlog read before the overdue pass",
      { ...base, stall: { from: 99_000, to: 104_300, passFirst: false } },
      {},
    ],
    ["the same stall, the overdue pass first", { ...base, stall: { from: 99_000, to: 104_300, passFirst: true } }, {}],
    [
      // The status consumer folds a report us-2 sent before the cut 4.5 s after it began (JetStream lag, a job
      // write retried under load): an accepted report refreshes lastSeen, but says nothing of the region after
      // it was sent.
      "a task report from the region folded late by the status consumer",
      { ...base, reports: [{ agent: "us-2", at: 104_300 }] },
      {},
    ],
    [
      "the grace still ends: a region cut for good is lost 120 s after its last sign of life",
      { ...base, until: 230_000, late: [{ agent: "us-2", sentAt: 99_900, readAt: 104_300 }] },
      { "us-1": 224_500, "us-2": 224_500 },
    ],
  ])("%s", (_name, timeline, lost) => {
    expect(run(timeline)).toEqual(lost);
  });
});

describe("a dead machine in a reachable region is still lost at its timeout", () => {
  it.each<[string, Timeline, Record<string, number>]>([
    // eu-1's last heartbeat is sent at 98 700 (read at 98 702): deadline 104 702. eu-2's first heartbeat after
    // it is sent at 105 300, and the pass at 105 500 loses eu-1.
    ["on a quiet scheduler", { ...base, deaths: { "eu-1": 100_000 } }, { "eu-1": 105_500 }],
    [
      "when every message takes 3 s to arrive (the lag floor absorbs a steady latency)",
      { ...base, deaths: { "eu-1": 100_000 }, latencyMs: 3_000 },
      { "eu-1": 108_500 },
    ],
    [
      "when its region-mate's clock is 40 s ahead or behind the scheduler's",
      { ...base, deaths: { "eu-1": 100_000 }, skewMs: { "eu-2": 40_000, "eu-1": -40_000 } },
      { "eu-1": 105_500 },
    ],
  ])("%s", (_name, timeline, lost) => {
    expect(run(timeline)).toEqual(lost);
  });
});

describe("advanceAlive: when an agent was last alive, from its messages' send times", () => {
  it.each([
    ["the first message: as read", { aliveAtMs: 0, lagFloorMs: undefined }, 1_000, 1_005, 1_005, 5],
    ["on time: as read", { aliveAtMs: 1_005, lagFloorMs: 5 }, 3_000, 3_004, 3_004, 4],
    [
      "read 4 s late: when it was sent (the floor rises by 20 ms at most)",
      { aliveAtMs: 3_004, lagFloorMs: 4 },
      5_000,
      9_000,
      5_024,
      24,
    ],
    ["a clock 40 s ahead: as read", { aliveAtMs: 0, lagFloorMs: undefined }, 41_000, 1_003, 1_003, -39_997],
    ["older than one seen: no step back", { aliveAtMs: 9_000, lagFloorMs: 4 }, 5_000, 9_100, 9_000, 24],
    ["no send time: as read", { aliveAtMs: 1_000, lagFloorMs: 4 }, 0, 2_000, 2_000, 4],
  ])("%s", (_name, prev, sentAt, readAt, aliveAtMs, lagFloorMs) => {
    expect(advanceAlive(prev, sentAt, readAt)).toEqual({ aliveAtMs, lagFloorMs });
  });
});
