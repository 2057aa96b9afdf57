import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { AUDIT_OUTBOX_MAX, type AuditEntry, AuditLog, type AuditPublisher } from "./audit-log.js";

/** A stream that refuses publishes while `down`, and keeps one copy per message id (JetStream's dedup window). */
class FlakyStream implements AuditPublisher {
  down = false;
  attempts = 0;
  readonly stored: { subject: string; msgID: string; method: string }[] = [];
  /** Publishes that land but whose answer is lost (a timeout after the write). */
  loseAnswers = 0;
  async publish(subject: string, data: Uint8Array, options: { msgID: string }): Promise<unknown> {
    this.attempts++;
    if (this.down) throw new Error("no responders");
    if (!this.stored.some((s) => s.msgID === options.msgID)) {
      const { method } = JSON.parse(new TextDecoder().decode(data)) as AuditEntry;
      this.stored.push({ subject, msgID: options.msgID, method });
    }
    if (this.loseAnswers > 0) {
      this.loseAnswers--;
      throw new Error("timeout");
    }
    return { seq: this.stored.length };
  }
}

const entry = (method: string): AuditEntry => ({
  atMs: 1,
  keyId: "k1",
  actor: "ops",
  role: "admin",
  tenant: "",
  method,
  target: "",
  result: "OK",
  detail: "",
});

function audit(stream: FlakyStream) {
  return new AuditLog({ js: undefined as never, jsm: undefined as never }, pino({ level: "silent" }), stream);
}

describe("audit trail: an entry the stream does not take is kept and written later, in order, once", () => {
  it("writes at once when the stream takes it", async () => {
    const stream = new FlakyStream();
    const log = audit(stream);
    await log.append(entry("capa.v1.OperatorService/SetPolicy"));
    expect(stream.stored.map((s) => [s.subject, s.method])).toEqual([
      ["capa.v1.audit.capa.v1.OperatorService.SetPolicy", "capa.v1.OperatorService/SetPolicy"],
    ]);
    expect(log.pending).toBe(0);
  });

  it("keeps entries while the stream has no leader, then writes them in append order", async () => {
    const stream = new FlakyStream();
    const log = audit(stream);
    await log.append(entry("A"));
    stream.down = true;
    await log.append(entry("B"));
    await log.append(entry("C"));
    expect(log.pending).toBe(2);
    stream.down = false;
    await log.append(entry("D")); // behind the pending ones, never ahead of them
    await log.drained();
    expect(stream.stored.map((s) => s.method)).toEqual(["A", "B", "C", "D"]);
    expect(log.pending).toBe(0);
  });

  it("a retry of a publish that landed without its answer is one entry (its message id)", async () => {
    const stream = new FlakyStream();
    const log = audit(stream);
    stream.loseAnswers = 1;
    await log.append(entry("A"));
    await log.drained();
    expect(stream.attempts).toBe(2);
    expect(stream.stored.map((s) => s.method)).toEqual(["A"]);
  });

  it("is bounded: past the outbox's size the oldest pending entry is dropped and counted", async () => {
    const stream = new FlakyStream();
    const log = audit(stream);
    stream.down = true;
    for (let i = 0; i <= AUDIT_OUTBOX_MAX; i++) await log.append(entry(`m${i}`));
    expect(log.pending).toBe(AUDIT_OUTBOX_MAX);
    expect(log.dropped).toBe(1);
    log.close();
    await log.drained();
  });
});
