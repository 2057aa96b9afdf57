/** What an advert check sees: the advert, who the broker says sent it, and what the scheduler already knows. */
import type { Advert } from "@capa/domain";

export interface KnownAgent {
  bootId: string;
  lost: boolean;
}

export interface AdvertCheckContext {
  advert: Advert;
  /** From the subject `capa.v1.agent.<region>.<agentId>.advert`, which only that agent's NATS user may publish. */
  subject: { region: string; agentId: string };
  /** The scheduler's record of an agent id, if any. */
  known(agentId: string): KnownAgent | undefined;
  /** The agent (not lost) that advertises a GPU UUID now, if any. */
  uuidHolder(uuid: string): string | undefined;
  /** Highest price per GPU-hour an advert may carry (micro-dollars). */
  maxPricePerGpuHour: number;
}

/** One named rule; `check` returns a refusal `detail`, or undefined when the advert passes. */
export interface AdvertCheck {
  /** The named reason, as counted in `capa_adverts_refused_total{reason}`. */
  reason: string;
  check(ctx: AdvertCheckContext): string | undefined;
}
