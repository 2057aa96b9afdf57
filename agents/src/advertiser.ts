/**
 * Publishes the agent's advert (on start, on change, every advert period) and heartbeats, protobuf over core NATS.
 * Both are soft state the scheduler refreshes from the stream of messages: losing one is harmless, so there is no
 * JetStream here. "Changed" means the offer changed (GPUs, health, prices, labels), not its telemetry: utilisation
 * and temperature move every second and belong in heartbeats.
 */
import { encode, subjects } from "@capa/bus";
import type { Advert, Heartbeat } from "@capa/domain";
import type { Logger } from "pino";

export type AdvertBody = Omit<Advert, "sequence" | "sentAtMs">;
export type HeartbeatBody = Omit<Heartbeat, "sequence" | "sentAtMs">;

export interface AdvertiserOptions {
  publisher: { publish(subject: string, data: Uint8Array): void };
  region: string;
  agentId: string;
  advertIntervalMs: number;
  logger: Logger;
  now?: () => number;
}

/** The parts of an advert whose change must reach the scheduler now. */
export function offerFingerprint(a: AdvertBody): string {
  const gpus = a.gpus.map((g) => [g.index, g.uuid, g.model, g.vramMib, g.health, g.migEnabled]);
  const { gpus: _g, ...rest } = a;
  return JSON.stringify([gpus, rest, Object.entries(a.labels).sort()]);
}

export class Advertiser {
  private advertSeq = 0;
  private heartbeatSeq = 0;
  private lastAdvert: Advert | undefined;
  private lastFingerprint = "";
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(
    private readonly options: AdvertiserOptions,
    private readonly body: () => AdvertBody,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Publishes the first advert and starts the advert period. */
  start(): void {
    this.publishAdvert();
    this.timer = setInterval(() => this.publishAdvert(), this.options.advertIntervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The last advert published (or what would be published, before the first one). */
  current(): Advert {
    return this.lastAdvert ?? { ...this.body(), sequence: 0, sentAtMs: 0 };
  }

  publishAdvert(): Advert {
    const body = this.body();
    const advert: Advert = { ...body, sequence: ++this.advertSeq, sentAtMs: this.now() };
    this.lastAdvert = advert;
    this.lastFingerprint = offerFingerprint(body);
    this.publish(subjects.advert(this.options.region, this.options.agentId), encode.advert(advert));
    return advert;
  }

  /** Publishes at once when the offer differs from the last advert; true if it did. */
  publishIfChanged(): boolean {
    if (offerFingerprint(this.body()) === this.lastFingerprint) return false;
    this.publishAdvert();
    return true;
  }

  heartbeat(body: HeartbeatBody): Heartbeat {
    const heartbeat: Heartbeat = { ...body, sequence: ++this.heartbeatSeq, sentAtMs: this.now() };
    this.publish(subjects.heartbeat(this.options.region, this.options.agentId), encode.heartbeat(heartbeat));
    return heartbeat;
  }

  private publish(subject: string, data: Uint8Array): void {
    try {
      this.options.publisher.publish(subject, data);
    } catch (err) {
      // Closed or draining connection: the next period tries again.
      this.options.logger.warn({ err, subject }, "publish failed");
    }
  }
}
