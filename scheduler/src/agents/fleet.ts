/** Operator views of the fleet: agents with status, free GPUs and tasks; draining. */
import { type FieldViolation, throwIfViolations } from "@capa/domain";
import type { ClusterStateApi } from "../planner/engine.js";
import type { AllocRepo } from "../store/alloc-repo.js";
import { agentStatus } from "./advert.js";
import type { AgentEntry, AgentRegistry } from "./registry.js";

export interface AgentInfo {
  record: AgentEntry["record"];
  status: string;
  lastSeenMs: number;
  freeGpuIndices: number[];
  taskIds: string[];
  nowMs: number;
}

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

export function tokenViolations(value: string, field: string, required: boolean): FieldViolation[] {
  if (value === "") return required ? [{ field, message: "must not be empty" }] : [];
  return TOKEN.test(value) ? [] : [{ field, message: "must be letters, digits, '_' or '-' (at most 128)" }];
}

export class Fleet {
  constructor(
    private readonly registry: AgentRegistry,
    private readonly allocs: AllocRepo,
    private readonly cluster: ClusterStateApi,
    private readonly now: () => number,
    private readonly onUndrain: () => void,
  ) {}

  list(region: string): AgentInfo[] {
    throwIfViolations(tokenViolations(region, "region", false));
    return this.registry
      .list()
      .filter((e) => region === "" || e.record.advert.region === region)
      .sort((a, b) => (a.record.advert.agentId < b.record.advert.agentId ? -1 : 1))
      .map((e) => this.info(e));
  }

  async drain(agentId: string, drain: boolean): Promise<AgentInfo> {
    throwIfViolations(tokenViolations(agentId, "agent_id", true));
    const entry = await this.registry.setDraining(agentId, drain);
    if (!drain) this.onUndrain();
    return this.info(entry);
  }

  private info(e: AgentEntry): AgentInfo {
    const id = e.record.advert.agentId;
    const listed = this.allocs.get(id)?.value.tasks ?? [];
    const taken = new Set(listed.flatMap((t) => t.gpuIndices));
    const free = e.record.lost
      ? []
      : this.cluster.agent(id)
        ? this.cluster.freeGpuIndices(id)
        : e.record.advert.gpus.filter((g) => g.health === "ok" && !taken.has(g.index)).map((g) => g.index);
    return {
      record: e.record,
      status: agentStatus(e.record),
      lastSeenMs: e.lastSeenMs,
      freeGpuIndices: free,
      taskIds: listed.map((t) => t.taskId),
      nowMs: this.now(),
    };
  }
}
