import { connect, type NatsConnection, nkeyAuthenticator } from "@nats-io/transport-node";
import { installRequestFix } from "./request-fix.js";
import { installWriteCoalescing } from "./write-coalesce.js";

export type { NatsConnection } from "@nats-io/transport-node";

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

export interface BusConnectOptions {
  /** Comma-separated URLs are accepted, as in CAPA_NATS_URL. */
  servers: string | string[];
  name: string;
  /** Keep retrying for ever by default: a scheduler or agent outlives a NATS restart. */
  maxReconnectAttempts?: number;
  user?: string;
  pass?: string;
  token?: string;
  /** An nkey user's seed (`SU...`, what `capa agent enroll` writes): the connection signs the server's nonce. */
  nkeySeed?: string;
  /**
   * Where request replies and watch deliveries arrive (default `_INBOX`). An agent uses `_INBOX_<agentId>`, the
   * only inbox its NATS user may subscribe to, so it can never read replies meant for someone else.
   */
  inboxPrefix?: string;
  /** Give up on the first connect after this long. */
  timeoutMs?: number;
  /**
   * Capture a stack trace at every request (KV get/put, JetStream publish) so a failed request's error points at
   * its caller. Default true; the scheduler and agents turn it off: a capture per request is a measurable share
   * of their CPU under load (profiled by `npm run bench:e2e`), and their errors carry the key or subject anyway.
   */
  asyncTraces?: boolean;
}

export class BusConnectError extends Error {
  override name = "BusConnectError";
}

export function natsServers(value: string | string[]): string[] {
  const list = Array.isArray(value) ? value : value.split(",");
  return list.map((s) => s.trim()).filter(Boolean);
}

export async function connectBus(options: BusConnectOptions): Promise<NatsConnection> {
  const servers = natsServers(options.servers);
  installRequestFix();
  installWriteCoalescing();
  try {
    return await connect({
      servers,
      name: options.name,
      maxReconnectAttempts: options.maxReconnectAttempts ?? -1,
      reconnectTimeWait: 500,
      timeout: options.timeoutMs ?? 5_000,
      ...(options.asyncTraces === false ? { noAsyncTraces: true } : {}),
      ...(options.user ? { user: options.user, pass: options.pass } : {}),
      ...(options.token ? { token: options.token } : {}),
      ...(options.nkeySeed
        ? { authenticator: nkeyAuthenticator(new TextEncoder().encode(options.nkeySeed.trim())) }
        : {}),
      ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
    });
  } catch (cause) {
    throw new BusConnectError(`cannot connect to NATS at ${servers.join(",")}: ${(cause as Error).message}`, { cause });
  }
}
