/**
 * Watches every revision of `capa_allocs` (the agents' desired assignments) for the whole fault run, from its
 * backing stream with an ordered consumer (which re-creates itself across NATS restarts and resumes after the
 * last sequence it delivered), and checks at each revision:
 * - capacity: the GPUs an agent's live (not stopping) assignments hold sum to at most its GPU count, with no
 *   index twice and none out of range; and Σ over all agents ≤ Σ capacity;
 * - single placement: no task is live on two agents at the same time.
 * It also records every allocation (task, epoch) it saw, for the billing check. The bucket keeps only 5
 * revisions per key, so a client reading it directly falls behind under a burst and misses revisions; the
 * watcher reads a JetStream mirror of the bucket's stream instead (`CHAOS_ALLOCS`, no limits, kept by the
 * servers as revisions are written, sequences equal to the bucket's). Gaps in the sequence are still counted.
 */
import { decode } from "@capa/bus";
import type { TaskAssignment } from "@capa/domain";
import { waitFor } from "@capa/testkit";
import { DeliverPolicy, jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

const MIRROR = "CHAOS_ALLOCS";

export interface SeenAllocation {
  taskId: string;
  jobId: string;
  epoch: number;
  agentId: string;
  gpus: number;
  pricePerGpuHour: number;
}

export interface AllocationReport {
  revisions: number;
  /** Stream sequences never delivered (removed by the history limit before the watcher read them). */
  missed: number;
  capacityViolations: string[];
  doublePlacements: string[];
  allocations: Map<string, SeenAllocation>;
  /** Most GPUs held at once over the run, and the capacity. */
  peakAllocated: number;
  capacity: number;
}

export class AllocationWatcher {
  private readonly live = new Map<string, TaskAssignment[]>();
  private readonly report: AllocationReport;
  private lastSeq = 0;
  private stopped = false;
  private stopFn: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    /** GPU count per agent id; an agent not listed is a violation. */
    private readonly capacityOf: ReadonlyMap<string, number>,
  ) {
    this.report = {
      revisions: 0,
      missed: 0,
      capacityViolations: [],
      doublePlacements: [],
      allocations: new Map(),
      peakAllocated: 0,
      capacity: [...capacityOf.values()].reduce((a, b) => a + b, 0),
    };
  }

  /**
   * Consumes from the first revision (then from the one after the last seen, after any interruption). An ordered
   * consumer does not always come back after every NATS server restarted, so a watchdog re-subscribes when the
   * stream is ahead of the watcher and nothing arrived for a few seconds.
   */
  async start(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    const source = await jsm.streams.info("KV_capa_allocs");
    await jsm.streams.add({
      name: MIRROR,
      mirror: { name: "KV_capa_allocs" },
      storage: StorageType.File,
      num_replicas: source.config.num_replicas,
      ...(source.config.placement ? { placement: source.config.placement } : {}),
    });
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          const consumer = await jetstream(this.nc).consumers.get(MIRROR, {
            ...(this.lastSeq === 0
              ? { deliver_policy: DeliverPolicy.All }
              : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.lastSeq + 1 }),
          });
          const messages = await consumer.consume();
          this.stopFn = () => void messages.stop();
          let lastMessageAt = Date.now();
          const watchdog = setInterval(() => {
            if (Date.now() - lastMessageAt < 3_000) return;
            this.behind()
              .then((behind) => {
                if (behind) messages.stop();
              })
              .catch(() => undefined);
          }, 1_000);
          try {
            for await (const m of messages) {
              lastMessageAt = Date.now();
              if (m.seq <= this.lastSeq) continue; // redelivered after a re-subscribe
              if (this.lastSeq && m.seq > this.lastSeq + 1) this.report.missed += m.seq - this.lastSeq - 1;
              this.lastSeq = m.seq;
              const agentId = m.subject.slice("$KV.capa_allocs.".length);
              const op = m.headers?.get("KV-Operation");
              const tasks =
                op === "DEL" || op === "PURGE" || m.data.length === 0 ? [] : decode.assignments(m.data).tasks;
              this.observe(agentId, tasks, m.seq);
            }
          } finally {
            clearInterval(watchdog);
          }
        } catch {
          // NATS down or restarting: try again below
        }
        if (!this.stopped) await new Promise((r) => setTimeout(r, 500));
      }
    })();
    await waitFor(async () => this.lastSeq > 0 || (await this.behind().catch(() => true)) === false, {
      timeoutMs: 30_000,
      what: "the allocation watcher subscribed",
    });
  }

  private async behind(): Promise<boolean> {
    const jsm = await jetstreamManager(this.nc);
    const [source, mirror] = await Promise.all([jsm.streams.info("KV_capa_allocs"), jsm.streams.info(MIRROR)]);
    return Math.max(source.state.last_seq, mirror.state.last_seq) > this.lastSeq;
  }

  /** Waits (bounded) until every revision written so far is checked, then stops. */
  async stop(): Promise<AllocationReport> {
    await waitFor(async () => !(await this.behind()), { timeoutMs: 30_000, what: "the watcher caught up" }).catch(
      () => undefined,
    );
    this.stopped = true;
    this.stopFn?.();
    await this.loop?.catch(() => undefined);
    return this.report;
  }

  private observe(agentId: string, tasks: TaskAssignment[], seq: number): void {
    this.report.revisions++;
    const active = tasks.filter((t) => !t.stop);
    this.live.set(agentId, active);
    for (const t of tasks) {
      const key = `${t.taskId}/${t.epoch}`;
      if (!this.report.allocations.has(key))
        this.report.allocations.set(key, {
          taskId: t.taskId,
          jobId: t.jobId,
          epoch: t.epoch,
          agentId,
          gpus: t.gpuIndices.length,
          pricePerGpuHour: t.pricePerGpuHour,
        });
    }
    const capacity = this.capacityOf.get(agentId);
    const indices = active.flatMap((t) => t.gpuIndices);
    if (capacity === undefined) this.report.capacityViolations.push(`seq ${seq}: unknown agent ${agentId}`);
    else if (
      indices.length > capacity ||
      new Set(indices).size !== indices.length ||
      indices.some((i) => i < 0 || i >= capacity)
    )
      this.report.capacityViolations.push(`seq ${seq}: ${agentId} holds GPUs [${indices.join(",")}] of ${capacity}`);
    let total = 0;
    const holders = new Map<string, string>();
    for (const [agent, list] of this.live) {
      for (const t of list) {
        total += t.gpuIndices.length;
        const other = holders.get(t.taskId);
        if (other && other !== agent && (agent === agentId || other === agentId))
          this.report.doublePlacements.push(`seq ${seq}: task ${t.taskId} live on ${other} and ${agent}`);
        holders.set(t.taskId, agent);
      }
    }
    this.report.peakAllocated = Math.max(this.report.peakAllocated, total);
    if (total > this.report.capacity)
      this.report.capacityViolations.push(`seq ${seq}: ${total} GPUs allocated of ${this.report.capacity}`);
  }
}
