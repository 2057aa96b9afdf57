/**
 * Billing metrics derived from the ledger itself, never from the settler: an ordered consumer reads CAPA_LEDGER
 * from its first entry and sums each charge, fee and payout (integer micros) by region and GPU model. Reading
 * the stream leaves settlement exactly as it is, and every replica (leader or not) reports the same totals,
 * which survive restarts because they are rebuilt from the stream. Each ledger subject holds one entry (the
 * ledger writes with `expect.lastSubjectSequence = 0`), so no entry is counted twice.
 */

import { decodeLedgerEntry, LEDGER_STREAM, ledgerFilters } from "@capa/ledger";
import type { LedgerEntry } from "@capa/market";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { BillingTotalsSource } from "../metrics.js";

type Kind = "charge" | "fee" | "payout";
const KINDS = new Set<string>(["charge", "fee", "payout"]);
const RETRY_MS = 2_000;

export class BillingFeed implements BillingTotalsSource {
  private readonly sums = new Map<string, { kind: Kind; region: string; model: string; micros: number }>();
  private stopped = false;
  private stopCurrent: (() => void) | undefined;
  private lastSeq = 0;
  /** Ledger messages read so far (for tests: what the consumer's filter lets through). */
  delivered = 0;

  constructor(
    private readonly js: JetStreamClient,
    private readonly logger: Logger,
  ) {}

  totals() {
    return this.sums.values();
  }

  /** Adds one entry to the totals (exported for the unit test of the arithmetic). */
  add(entry: Pick<LedgerEntry, "kind" | "region" | "gpuModel" | "amount">): void {
    const key = `${entry.kind}\u0000${entry.region}\u0000${entry.gpuModel}`;
    const row = this.sums.get(key) ?? { kind: entry.kind, region: entry.region, model: entry.gpuModel, micros: 0 };
    this.sums.set(key, row);
    row.micros += entry.amount;
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.stopCurrent?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.follow();
      } catch (err) {
        if (!this.stopped) this.logger.warn({ err }, "billing metrics: ledger read failed; retrying");
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, RETRY_MS).unref());
    }
  }

  /** Follows the stream from after the last entry counted (a retry resumes, it does not recount). */
  private async follow(): Promise<void> {
    const consumer = await this.js.consumers.get(LEDGER_STREAM, {
      // Entries only: receipts (one per allocation, the largest messages in the stream) are not money, and were
      // delivered to every replica just to be skipped.
      filter_subjects: ledgerFilters.allEntries,
      ...(this.lastSeq > 0
        ? { deliver_policy: "by_start_sequence" as const, opt_start_seq: this.lastSeq + 1 }
        : { deliver_policy: "all" as const }),
    });
    try {
      const messages = await consumer.consume({ max_messages: 256 });
      this.stopCurrent = () => messages.stop();
      if (this.stopped) messages.stop();
      for await (const m of messages) {
        this.lastSeq = m.seq;
        this.delivered++;
        // capa.v1.ledger.<kind>.…: receipts share the stream and are not money.
        const kind = m.subject.split(".")[3] ?? "";
        if (!KINDS.has(kind)) continue;
        try {
          this.add(decodeLedgerEntry(m.data));
        } catch (err) {
          this.logger.error({ err, subject: m.subject }, "billing metrics: undecodable ledger entry skipped");
        }
      }
    } finally {
      this.stopCurrent = undefined;
      await consumer.delete().catch(() => undefined);
    }
  }
}
