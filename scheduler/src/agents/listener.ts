/**
 * Subscribes to adverts and heartbeats (core NATS, every replica) and feeds the registry. Malformed or
 * spoofed messages (agent id not matching the subject) are dropped and counted; they never throw.
 */
import { decode, type NatsConnection, subjects } from "@capa/bus";
import type { Logger } from "pino";
import { advertProblem, heartbeatProblem } from "./advert.js";
import type { AdvertOutcome, AgentRegistry } from "./registry.js";

export interface ListenerHooks {
  onAdvert(agentId: string, outcome: AdvertOutcome): void;
  onRevived(agentId: string): void;
}

export function listenToAgents(
  nc: NatsConnection,
  registry: AgentRegistry,
  hooks: ListenerHooks,
  logger: Logger,
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
        return;
      }
      const problem = advertProblem(advert, agentOf(msg.subject));
      if (problem) {
        logger.warn({ subject: msg.subject, problem }, "dropping advert");
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
