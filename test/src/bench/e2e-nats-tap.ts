/**
 * Counts what a benchmark child process sends to NATS, by subject class, so `npm run bench:e2e` can show the
 * scheduler's round trips per job (job record writes, KV reads, ledger publishes, ...) next to its CPU.
 *
 * It wraps `ProtocolHandler.publish` of @nats-io/nats-core, the one place every outbound message of every
 * connection in the process passes (plain publishes, requests, JetStream API calls, KV operations, pull requests
 * and acks), so nothing the scheduler sends is missed and nothing another process sends is counted; and its
 * `flushPending`, to count the socket writes those messages took. The scheduler
 * child runs nothing else on NATS. Installed only when the benchmark asks (`countNats`); it adds a string split
 * per message, which is noise next to the message itself.
 */
import { ProtocolHandler } from "@nats-io/nats-core/internal";

const counts = new Map<string, number>();
/** The key under which `natsCounts` reports socket writes (flushes of a connection's outbound buffer). */
export const SOCKET_WRITES = "(socket writes)";
let socketWrites = 0;

/** The bucket's short name (`capa_jobs` → `jobs`) and, for budgets, which kind of document the key is. */
function kvTarget(bucket: string, key: string): string {
  const b = bucket.replace(/^capa_/, "");
  if (b !== "budgets") return b;
  if (key.startsWith("allocs.")) return "budgets/allocs";
  if (key.startsWith("settled.")) return "budgets/settled";
  return "budgets/tenant";
}

function kvOp(headers: unknown): string {
  const op = (headers as { get?(k: string): string } | undefined)?.get?.("KV-Operation");
  if (op === "PURGE") return "purge";
  if (op === "DEL") return "delete";
  return "write";
}

function textOf(payload: unknown): string {
  if (typeof payload === "string") return payload;
  return payload instanceof Uint8Array ? new TextDecoder().decode(payload) : "";
}

/** One class per kind of round trip: `kv write jobs`, `kv read budgets/allocs`, `js consumer create`, ... */
export function classify(subject: string, headers?: unknown, payload?: unknown): string {
  const t = subject.split(".");
  if (t[0] === "$KV") return `kv ${kvOp(headers)} ${kvTarget(t[1] ?? "", t.slice(2).join("."))}`;
  if (t[0] === "$JS" && t[1] === "API") {
    // $JS.API.DIRECT.GET.KV_<bucket>.$KV.<bucket>.<key>: a KV read any replica may answer.
    if (t[2] === "DIRECT" && t[3] === "GET") {
      const stream = t[4] ?? "";
      if (stream.startsWith("KV_")) return `kv read ${kvTarget(stream.slice(3), t.slice(7).join("."))}`;
      return `js direct get ${stream}`;
    }
    // $JS.API.STREAM.MSG.GET.<stream>: a read through the stream leader (TypedKv.getLatest, stream reads).
    if (t[2] === "STREAM" && t[3] === "MSG" && t[4] === "GET") {
      const stream = t[5] ?? "";
      return stream.startsWith("KV_")
        ? `kv read-leader ${stream.slice(3).replace(/^capa_/, "")}`
        : `js msg get ${stream}`;
    }
    if (t[2] === "CONSUMER") {
      // CREATE / DURABLE.CREATE / MSG.NEXT (pull) / DELETE / INFO, on which stream.
      const op = t[3] === "MSG" ? "pull" : t[3] === "DURABLE" ? "durable create" : (t[3] ?? "").toLowerCase();
      const stream = t[3] === "MSG" || t[3] === "DURABLE" ? t[5] : t[4];
      return `js consumer ${op} ${stream ?? ""}`.trim();
    }
    // $JS.API.STREAM.PURGE.KV_<bucket> with {"filter":"$KV.<bucket>.<key>"}: a KV purge (TypedKv.purgeAt).
    if (t[2] === "STREAM" && t[3] === "PURGE" && t[4]?.startsWith("KV_")) {
      const filter = /"filter":"\$KV\.[^.]+\.([^"]*)"/.exec(textOf(payload))?.[1] ?? "";
      return `kv purge ${kvTarget(t[4].slice(3), filter)}`;
    }
    return `js api ${t.slice(2, 4).join(".").toLowerCase()} ${t[4] ?? ""}`.trim();
  }
  if (t[0] === "$JS" && t[1] === "ACK") return `js ack ${t[2] ?? ""}`;
  if (t[0] === "$JS" && t[1] === "FC") return "js flow control";
  if (t[0]?.startsWith("_INBOX") || t[0] === "_INBOX") return "reply";
  if (t[0] === "capa" && t[1] === "v1") {
    // capa.v1.ledger.…, capa.v1.audit.…, capa.v1.agent.….control.…: the subject's kind, not its ids.
    if (t[2] === "agent") return `capa agent ${t.slice(5).join(".")}`;
    return `capa ${t[2] ?? ""}`;
  }
  return t.slice(0, 2).join(".");
}

/** Starts counting; idempotent. */
export function installNatsTap(): void {
  const proto = ProtocolHandler.prototype as unknown as {
    publish(subject: string, payload?: unknown, options?: { headers?: unknown }): void;
    __capaTapped?: boolean;
  };
  if (proto.__capaTapped) return;
  proto.__capaTapped = true;
  const original = proto.publish;
  proto.publish = function (this: unknown, subject, payload, options) {
    const c = classify(subject, options?.headers, payload);
    counts.set(c, (counts.get(c) ?? 0) + 1);
    return original.call(this, subject, payload, options);
  };
  // Socket writes: every flush of a non-empty outbound buffer is one write to the socket (how many messages
  // share one is what @capa/bus's write coalescing changes).
  const flushing = proto as unknown as { flushPending(): void; outbound?: { size(): number } };
  const flush = flushing.flushPending;
  flushing.flushPending = function (this: typeof flushing) {
    if ((this.outbound?.size() ?? 0) > 0) socketWrites++;
    return flush.call(this);
  };
}

/** The counts so far (monotonic; the benchmark takes differences). */
export function natsCounts(): Record<string, number> {
  return { ...Object.fromEntries(counts), [SOCKET_WRITES]: socketWrites };
}
