/**
 * Batched acknowledgement of the status consumer's reports (a consumer with `ack_policy: "all"`): one ack of
 * stream sequence S tells the server that every message of the consumer up to S is handled, so a batch of
 * folded reports costs one ack instead of one each.
 *
 * An ack of S must only cover reports whose fold is durable. The tracker acks S only when
 *  (a) every report this subscription received with a stream sequence ≤ S is handled (folded, its job write and
 *      listing removal answered), and
 *  (b) no report with a stream sequence ≤ S is pending at another subscriber ("foreign"): one delivered to an
 *      earlier subscription of this scheduler or a previous leader that crashed before it acked (the server
 *      redelivers those only after `ack_wait`), or to a deposed leader still consuming.
 * (b) holds once a check of the consumer finds `num_ack_pending` ≤ the reports this subscription holds unacked,
 * counted before the check was sent and while no ack was sent: the server's count is every pending delivery,
 * this subscription's included, so nothing else is pending (the gate). After the gate, every delivery to any
 * subscriber takes the next delivery sequence; one this subscription does not see (a gap in the delivery
 * sequences it receives, which arrive in order) may be foreign, and acks stop until the gate passes again.
 * Until then reports are folded as usual and acked later (a report stays in the stream; a crash redelivers it,
 * and folding is idempotent: task states only move forward, per epoch).
 *
 * A consumer created before with `ack_policy: "explicit"` is kept as it is (its policy cannot change in place):
 * each report is then acked on its own, as before. Used by the status and the usage consumer.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "pino";

export interface AckableReport {
  /** Stream sequence. */
  seq: number;
  info: { deliverySequence: number };
  ack(): void;
  nak(millis?: number): void;
}

export interface ConsumerPending {
  /** Deliveries the server counts as not acknowledged. */
  numAckPending: number;
  /** The last delivery sequence the server assigned. */
  deliveredConsumerSeq: number;
}

export interface AckAllOptions {
  /** Reads the consumer's pending count (a consumer info request). */
  pending: () => Promise<ConsumerPending>;
  logger: Logger;
  /** Longest wait before handled reports are acked. */
  flushMs?: number;
  /** Handled reports that are acked at once, without waiting for `flushMs`. */
  flushCount?: number;
  /** Period of the gate's re-check while acks are held. */
  gateMs?: number;
}

type State = "in-flight" | "done" | "failed";

interface Entry {
  report: AckableReport;
  state: State;
}

export class AckAllTracker {
  /** Received and not acknowledged yet, by stream sequence. */
  private readonly entries = new Map<number, Entry>();
  /** The same entries' stream sequences, ascending (deliveries come in order; a redelivery may go before). */
  private order: number[] = [];
  private safe = false;
  /** Highest delivery sequence that may arrive without a gap (set by the gate). */
  private nextDelivery = 0;
  private lastDelivery = 0;
  private doneSinceAck = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private gateTimer: NodeJS.Timeout | undefined;
  private checking = false;
  private stopped = false;
  private readonly flushMs: number;
  private readonly flushCount: number;
  private readonly gateMs: number;

  constructor(private readonly o: AckAllOptions) {
    this.flushMs = o.flushMs ?? 50;
    this.flushCount = o.flushCount ?? 64;
    this.gateMs = o.gateMs ?? 1_000;
    this.checkGate();
  }

  /** Reports received and not acknowledged (for tests). */
  get held(): number {
    return this.entries.size;
  }

  /** True while acks may be sent (for tests). */
  get acking(): boolean {
    return this.safe;
  }

  /**
   * A delivery. True when it must be handled; false for a redelivery of a report that is handled (its fold is
   * durable; it is acked with the others) or still being handled here.
   */
  delivered(report: AckableReport): boolean {
    const d = report.info.deliverySequence;
    if (this.safe && d >= this.nextDelivery) {
      if (d > this.nextDelivery) this.unsafe(`delivery ${d} after ${this.nextDelivery - 1}: one went elsewhere`);
      else this.nextDelivery = d + 1;
    }
    this.lastDelivery = Math.max(this.lastDelivery, d);
    const entry = this.entries.get(report.seq);
    if (entry && entry.state !== "failed") {
      // Acked through the latest delivery: the server ignores an ack-all older than one it applied.
      if (d > entry.report.info.deliverySequence) entry.report = report;
      return false;
    }
    if (!entry) this.insert(report.seq);
    this.entries.set(report.seq, { report, state: "in-flight" });
    return true;
  }

  /** Its fold is durable: acked with the next batch. */
  handled(report: AckableReport): void {
    const entry = this.entries.get(report.seq);
    if (!entry) return;
    entry.state = "done";
    this.doneSinceAck++;
    if (this.doneSinceAck >= this.flushCount) this.flush();
    else if (!this.flushTimer && !this.stopped) this.flushTimer = setTimeout(() => this.flush(), this.flushMs);
  }

  /** Not applied: redelivered soon (it holds back every ack above it until it is handled). */
  failed(report: AckableReport, redeliverMs: number): void {
    const entry = this.entries.get(report.seq);
    if (entry) entry.state = "failed";
    report.nak(redeliverMs);
  }

  /** Acks the highest handled report below every unhandled one, when the gate is passed. */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.safe) return;
    // The handled prefix: O(what it acks); a report still being folded at the front stops it at once.
    let n = 0;
    while (n < this.order.length && this.entries.get(this.order[n]!)!.state === "done") n++;
    if (n === 0) return;
    this.entries.get(this.order[n - 1]!)!.report.ack();
    for (let i = 0; i < n; i++) this.entries.delete(this.order[i]!);
    this.order = n === this.order.length ? [] : this.order.slice(n);
    this.doneSinceAck = 0;
  }

  /** Acks what may be acked and stops the timers (the subscription ended). */
  stop(): void {
    this.flush();
    this.stopped = true;
    clearTimeout(this.flushTimer);
    clearTimeout(this.gateTimer);
  }

  private insert(seq: number): void {
    const o = this.order;
    if (o.length === 0 || o[o.length - 1]! < seq) {
      o.push(seq);
      return;
    }
    let i = o.length;
    while (i > 0 && o[i - 1]! > seq) i--;
    o.splice(i, 0, seq);
  }

  private unsafe(why: string): void {
    this.safe = false;
    this.o.logger.info({ why }, "task reports: acks held until no other delivery is pending");
    this.checkGate();
  }

  private checkGate(): void {
    if (this.checking || this.stopped) return;
    this.checking = true;
    // Counted before the request, while no ack is sent (safe is false): the server's count at its answer is at
    // least this plus anything pending elsewhere.
    const held = this.entries.size;
    const seenBefore = this.lastDelivery;
    this.o
      .pending()
      .then((p) => {
        if (this.stopped || this.safe) return;
        // A delivery received after the server answered may have skipped one that went elsewhere: check again.
        if (p.numAckPending <= held && this.lastDelivery <= p.deliveredConsumerSeq) {
          this.safe = true;
          // Deliveries up to the server's last one are this subscription's (in flight or received).
          this.nextDelivery = Math.max(seenBefore, p.deliveredConsumerSeq) + 1;
          this.flush();
        }
      })
      .catch(() => undefined) // unreachable store: checked again below
      .finally(() => {
        this.checking = false;
        if (!this.safe && !this.stopped) {
          clearTimeout(this.gateTimer);
          this.gateTimer = setTimeout(() => this.checkGate(), this.gateMs);
        }
      });
  }
}

/** A tracker for a durable consumer of `stream`, when it acks all (undefined: it acks each message). */
export function ackAllTrackerFor(
  jsm: JetStreamManager,
  stream: string,
  info: { name: string; config: { ack_policy?: string } },
  logger: Logger,
): AckAllTracker | undefined {
  if (info.config.ack_policy !== "all") return undefined;
  return new AckAllTracker({
    logger,
    pending: async () => {
      const i = await jsm.consumers.info(stream, info.name);
      return { numAckPending: i.num_ack_pending, deliveredConsumerSeq: i.delivered.consumer_seq };
    },
  });
}
