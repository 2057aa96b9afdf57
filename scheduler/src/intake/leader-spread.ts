/**
 * Keeps the Raft leaders of each group of streams on different servers: the two intake streams, so one server's
 * death leaves at least one intake stream with a live leader (and the fallback a place to write); the three
 * request registers (scheduler/src/requests), so it leaves two that decide a request id's job. Leader-only: every
 * `intervalMs` it reads each group's cluster info and, while two streams of a group are led by the same server
 * and another current peer of the stream leads none of the group, asks the later one to step down (the JetStream
 * API elects another peer; nats-server 2.9 takes no preferred leader, so a few checks may be needed). At most one
 * step-down per group per check; each is logged and counted.
 */
import { INTAKE_STREAMS, kvStreamName, REQUEST_REGISTERS } from "@capa/bus";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { LeaderPart } from "../leader/leadership.js";
import type { SchedulerMetrics } from "../metrics.js";

export const DEFAULT_SPREAD_INTERVAL_MS = 5_000;

/** The groups whose leaders are kept apart. */
export const SPREAD_GROUPS: readonly (readonly string[])[] = [
  INTAKE_STREAMS,
  REQUEST_REGISTERS.map((b) => kvStreamName(b)),
];

export interface StreamLeadership {
  leader: string | undefined;
  /** The stream's other peers that are current (could lead after a step-down). */
  current: readonly string[];
}

/**
 * Which stream of a group should step down (undefined: nothing to do): the first led by a server that leads an
 * earlier one, provided one of its current peers leads no stream of the group (else a step-down only moves the
 * clash, as with a server of three down).
 */
export function streamToStepDown(streams: readonly (StreamLeadership | undefined)[]): number | undefined {
  const leaders = new Set(streams.map((s) => s?.leader).filter((l): l is string => !!l));
  const seen = new Set<string>();
  for (const [i, s] of streams.entries()) {
    if (!s?.leader) continue;
    if (seen.has(s.leader) && s.current.some((p) => !leaders.has(p))) return i;
    seen.add(s.leader);
  }
  return undefined;
}

export class IntakeLeaderSpread implements LeaderPart {
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly metrics: SchedulerMetrics,
    private readonly logger: Logger,
    private readonly intervalMs = DEFAULT_SPREAD_INTERVAL_MS,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
    void this.check();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check (exported for tests through the class): returns the streams asked to step down. */
  async check(): Promise<string[]> {
    if (this.checking) return [];
    this.checking = true;
    try {
      const stepped: string[] = [];
      for (const group of SPREAD_GROUPS) {
        const stream = await this.checkGroup(group);
        if (stream) stepped.push(stream);
      }
      return stepped;
    } finally {
      this.checking = false;
    }
  }

  private async checkGroup(group: readonly string[]): Promise<string | undefined> {
    try {
      // A group member that does not exist (the request registers below 3 replicas) leaves the group alone.
      const infos = await Promise.all(group.map((s) => this.jsm.streams.info(s).catch(() => undefined)));
      if (infos.some((i) => !i || i.config.num_replicas < 2)) return undefined;
      const views = infos.map((i) => ({
        leader: i?.cluster?.leader,
        current: (i?.cluster?.replicas ?? []).filter((r) => r.current && !r.offline).map((r) => r.name),
      }));
      const i = streamToStepDown(views);
      if (i === undefined) return undefined;
      const stream = group[i]!;
      await this.nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, undefined, { timeout: 2_000 });
      this.metrics.intakeStepdowns.inc({ stream });
      this.logger.info(
        { stream, leader: views[i]!.leader },
        "leader spread: two streams of a group led by one server; stepped one down",
      );
      return stream;
    } catch (err) {
      this.logger.warn({ err, group }, "leader spread check failed");
      return undefined;
    }
  }
}
