/**
 * Keeps the two intake streams' Raft leaders on different servers, so one server's death leaves at least one
 * intake stream with a live leader (and the fallback a place to write). Leader-only: every `intervalMs` it reads
 * both streams' cluster info and, while both are led by the same server, asks the second to step down (the
 * JetStream API elects another peer). At most one step-down per check; each is logged and counted.
 */
import { INTAKE_STREAMS } from "@capa/bus";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { LeaderPart } from "../leader/leadership.js";
import type { SchedulerMetrics } from "../metrics.js";

export const DEFAULT_SPREAD_INTERVAL_MS = 5_000;

/** Which intake stream should step down, given each stream's leader (undefined: nothing to do). */
export function streamToStepDown(leaders: readonly (string | undefined)[]): number | undefined {
  const [a, b] = leaders;
  return a && b && a === b ? 1 : undefined;
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

  /** One check (exported for tests through the class): returns the stream asked to step down, if any. */
  async check(): Promise<string | undefined> {
    if (this.checking) return undefined;
    this.checking = true;
    try {
      const infos = await Promise.all(INTAKE_STREAMS.map((s) => this.jsm.streams.info(s).catch(() => undefined)));
      if (infos.some((i) => (i?.config.num_replicas ?? 1) < 2)) return undefined;
      const leaders = infos.map((i) => i?.cluster?.leader);
      const i = streamToStepDown(leaders);
      if (i === undefined) return undefined;
      const stream = INTAKE_STREAMS[i]!;
      await this.nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, undefined, { timeout: 2_000 });
      this.metrics.intakeStepdowns.inc();
      this.logger.info(
        { stream, leader: leaders[i] },
        "intake: both intake streams led by one server; stepped one down",
      );
      return stream;
    } catch (err) {
      this.logger.warn({ err }, "intake: leader spread check failed");
      return undefined;
    } finally {
      this.checking = false;
    }
  }
}
