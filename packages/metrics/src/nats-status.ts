import type { Counter } from "prom-client";

/** The part of a NATS connection that reports its status changes (nats.js `NatsConnection.status()`). */
export interface NatsStatusSource {
  status(): AsyncIterable<{ type: string }>;
}

/** Routine events (pings, server list updates) are not worth a series; everything else is counted by type. */
const IGNORED = new Set(["ping", "update"]);

/**
 * Counts the connection's events (disconnect, reconnect, reconnecting, error, staleConnection, ldm, ...) into
 * `counter{event}` until the connection closes. Runs in the background; never throws.
 */
export function followNatsStatus(nc: NatsStatusSource, counter: Counter<"event">): void {
  void (async () => {
    try {
      for await (const s of nc.status()) if (!IGNORED.has(s.type)) counter.inc({ event: s.type });
    } catch {
      // the iterator ends (or throws) when the connection closes: nothing left to count
    }
  })();
}
