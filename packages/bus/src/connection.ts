import { connect, type NatsConnection } from "@nats-io/transport-node";

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
  /** Give up on the first connect after this long. */
  timeoutMs?: number;
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
  try {
    return await connect({
      servers,
      name: options.name,
      maxReconnectAttempts: options.maxReconnectAttempts ?? -1,
      reconnectTimeWait: 500,
      timeout: options.timeoutMs ?? 5_000,
      ...(options.user ? { user: options.user, pass: options.pass } : {}),
      ...(options.token ? { token: options.token } : {}),
    });
  } catch (cause) {
    throw new BusConnectError(`cannot connect to NATS at ${servers.join(",")}: ${(cause as Error).message}`, { cause });
  }
}
