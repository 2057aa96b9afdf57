/**
 * Runtime price changes (`capa agent price set`). The agent answers request-reply on
 * `capa.v1.agent.<region>.<agentId>.control.price` with a JSON body:
 *
 *   request  {"prices": "H100-80GB=2.10/1.00,A100-40GB=1.10", "replace": false}
 *   reply    {"ok": true, "prices": "<the full list now advertised>", "changed": true}
 *            {"ok": false, "error": "<why>"}
 *
 * Listed models are set (added or changed; "/0" or no interruptible part withdraws interruptible capacity);
 * with `replace` the list replaces every price (an empty list withdraws all). Model names are canonicalised as
 * `--price` does ("h100" → "H100-80GB"). A change is re-advertised at once; running allocations keep the price
 * locked at their placement, only later placements see the new one.
 */
import { subjects } from "@capa/bus";
import type { GpuPrice } from "@capa/domain";
import { formatPriceList, parsePriceList, pricesDiffer, setPrice } from "@capa/market";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { parsePriceFlag } from "./config.js";
import { AgentConfigError, AgentPriceError } from "./errors.js";

export interface PriceChangeRequest {
  prices: string;
  replace?: boolean;
}

export type PriceChangeReply = { ok: true; prices: string; changed: boolean } | { ok: false; error: string };

const MAX_REQUEST_BYTES = 16 * 1024;

/** Parses "MODEL=USD[/USD],..." into canonical prices; a model listed twice is an error. */
export function parsePriceChangeList(text: string): GpuPrice[] {
  const out: GpuPrice[] = [];
  for (const part of text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const price = parsePriceFlag(part);
    if (out.some((p) => p.gpuModel === price.gpuModel))
      throw new AgentConfigError(`prices: ${price.gpuModel} is priced twice`);
    out.push(price);
  }
  return out;
}

/** The price list after a change request; throws AgentConfigError for a malformed request. */
export function applyPriceChange(current: readonly GpuPrice[], request: unknown): GpuPrice[] {
  const r = request as Partial<PriceChangeRequest> | null;
  if (typeof r !== "object" || r === null || typeof r.prices !== "string")
    throw new AgentConfigError('expected {"prices": "MODEL=USD[/USD],...", "replace"?: boolean}');
  if (r.replace !== undefined && typeof r.replace !== "boolean")
    throw new AgentConfigError("replace must be a boolean");
  const listed = parsePriceChangeList(r.prices);
  if (r.replace) return listed.reduce<GpuPrice[]>((acc, p) => setPrice(acc, p), []);
  if (listed.length === 0) throw new AgentConfigError("prices: no price given");
  return listed.reduce<GpuPrice[]>((acc, p) => setPrice(acc, p), [...current]);
}

export interface PriceControlTarget {
  prices(): GpuPrice[];
  /** Applies a new list and re-advertises it. */
  setPrices(next: GpuPrice[]): void;
}

/** Serves the control subject until the returned stop() (or the connection closes). */
export function servePriceControl(
  nc: NatsConnection,
  region: string,
  agentId: string,
  target: PriceControlTarget,
  logger: Logger,
): { stop(): void } {
  const sub = nc.subscribe(subjects.agentPriceControl(region, agentId), {
    callback: (err, msg) => {
      if (err) {
        logger.warn({ err }, "price control subscription failed");
        return;
      }
      let reply: PriceChangeReply;
      try {
        if (msg.data.length > MAX_REQUEST_BYTES) throw new AgentConfigError("request too large");
        const before = target.prices();
        const next = applyPriceChange(before, JSON.parse(new TextDecoder().decode(msg.data)));
        const changed = pricesDiffer(before, next);
        if (changed) {
          target.setPrices(next);
          logger.info({ prices: formatPriceList(next) }, "prices changed; re-advertised");
        }
        reply = { ok: true, prices: formatPriceList(next), changed };
      } catch (err) {
        reply = { ok: false, error: (err as Error).message };
      }
      msg.respond(new TextEncoder().encode(JSON.stringify(reply)));
    },
  });
  return { stop: () => sub.unsubscribe() };
}

/**
 * Client side of `capa agent price set`: asks the agent to change its prices and returns the full list it now
 * advertises. Throws AgentPriceError when the agent refuses the list or does not answer within `timeoutMs`.
 */
export async function setAgentPrices(
  nc: NatsConnection,
  region: string,
  agentId: string,
  prices: string | readonly GpuPrice[],
  options: { replace?: boolean; timeoutMs?: number } = {},
): Promise<GpuPrice[]> {
  const text = typeof prices === "string" ? prices : formatPriceList(prices);
  const body: PriceChangeRequest = { prices: text, ...(options.replace ? { replace: true } : {}) };
  let data: Uint8Array;
  try {
    const msg = await nc.request(
      subjects.agentPriceControl(region, agentId),
      new TextEncoder().encode(JSON.stringify(body)),
      { timeout: options.timeoutMs ?? 5_000 },
    );
    data = msg.data;
  } catch (cause) {
    throw new AgentPriceError(`agent ${agentId} in region ${region} did not answer: ${(cause as Error).message}`, {
      cause,
    });
  }
  let reply: PriceChangeReply;
  try {
    reply = JSON.parse(new TextDecoder().decode(data)) as PriceChangeReply;
  } catch (cause) {
    throw new AgentPriceError(`agent ${agentId} sent an unreadable reply`, { cause });
  }
  if (!reply.ok) throw new AgentPriceError(`agent ${agentId} refused the prices: ${reply.error}`);
  return parsePriceList(reply.prices);
}
