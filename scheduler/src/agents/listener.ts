/**
 * Subscribes to adverts and heartbeats (core NATS, every replica) and feeds the registry. Malformed adverts and
 * ones the advert checks refuse (spoofed identity, contradictory GPUs, prices out of bounds: see advert-checks/)
 * are dropped with their named reason and counted; they never throw.
 */
import { decode, type NatsConnection, parseAgentSubject, subjects } from "@capa/bus";
import type { Logger } from "pino";
import { advertProblem, heartbeatProblem } from "./advert.js";
import { advertRefusal } from "./advert-checks/index.js";
import type { AdvertOutcome, AgentRegistry } from "./registry.js";

export interface ListenerHooks {
  onAdvert(agentId: string, outcome: AdvertOutcome): void;
  onRevived(agentId: string): void;
  /** An advert was dropped, with its named reason (`malformed` for one that does not decode or validate). */
  onRefused?(reason: string): void;
}

export interface ListenerOptions {
  /** Highest price per GPU-hour an advert may carry (micro-dollars). */
  maxPricePerGpuHour: number;
}

export function listenToAgents(
  nc: NatsConnection,
  registry: AgentRegistry,
  hooks: ListenerHooks,
  logger: Logger,
  options: ListenerOptions,
): { stop(): void } {
  const agentOf = (subject: string) => subject.split(".")[4];
  const adverts = nc.subscribe(subjects.allAdverts, {
    callback: (err, msg) => {
      if (err) return;
      let advert: ReturnType<typeof decode.advert>;
      try {
        advert = decode.advert(msg.data);
      } catch (e) {
        logger.warn({ err: e, subject: msg.subject }, "dropping undecodable advert");
        hooks.onRefused?.("malformed");
        return;
      }
      const subject = parseAgentSubject(msg.subject);
      const refusal = subject
        ? advertRefusal({
            advert,
            subject,
            known: (id) => {
              const e = registry.get(id);
              return e && { bootId: e.record.advert.bootId, lost: e.record.lost };
            },
            uuidHolder: (uuid) => registry.uuidHolder(uuid),
            maxPricePerGpuHour: options.maxPricePerGpuHour,
          })
        : { reason: "malformed", detail: "not an advert subject" };
      if (refusal) {
        logger.warn({ subject: msg.subject, ...refusal }, "refusing advert");
        hooks.onRefused?.(refusal.reason);
        return;
      }
      const problem = advertProblem(advert, agentOf(msg.subject));
      if (problem) {
        logger.warn({ subject: msg.subject, problem }, "dropping advert");
        hooks.onRefused?.("malformed");
        return;
      }
      try {
        hooks.onAdvert(advert.agentId, registry.onAdvert(advert));
      } catch (e) {
        logger.error({ err: e, agentId: advert.agentId }, "advert handling failed");
      }
    },
  });
  const heartbeats = nc.subscribe(subjects.allHeartbeats, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const hb = decode.heartbeat(msg.data);
        if (heartbeatProblem(hb, agentOf(msg.subject))) return;
        if (registry.onHeartbeat(hb)) hooks.onRevived(hb.agentId);
      } catch {
        // undecodable heartbeat: ignored
      }
    },
  });
  return {
    stop() {
      adverts.unsubscribe();
      heartbeats.unsubscribe();
    },
  };
}
