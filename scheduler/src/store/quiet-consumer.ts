/**
 * A `consume()` subscription can go quiet for good after NATS servers restart (the client stops pulling while the
 * durable consumer on the server has messages waiting; seen when every server of the home cluster was SIGKILLed
 * and restarted, and reported upstream for nats.js and nats-server). Nothing errors, so the consuming loop would
 * wait forever. This watchdog stops such a subscription, and the loop around it subscribes again (re-delivery
 * is harmless: both of the scheduler's consumers are idempotent).
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "pino";

export interface QuietWatch {
  /** Call on every delivered message. */
  delivered(): void;
  stop(): void;
}

export function watchForQuiet(
  jsm: JetStreamManager,
  stream: string,
  consumer: string,
  restart: () => void,
  logger: Logger,
  quietMs = 10_000,
): QuietWatch {
  let last = Date.now();
  let checking = false;
  const timer = setInterval(
    () => {
      if (checking || Date.now() - last < quietMs) return;
      checking = true;
      jsm.consumers
        .info(stream, consumer)
        .then((info) => {
          if (info.num_pending > 0 && Date.now() - last >= quietMs) {
            logger.warn(
              { consumer, pending: info.num_pending },
              "consumer quiet with messages waiting; subscribing again",
            );
            restart();
          }
        })
        .catch(() => undefined) // the store is unreachable: the subscription itself reports that
        .finally(() => {
          checking = false;
        });
    },
    Math.max(250, Math.floor(quietMs / 4)),
  );
  timer.unref?.();
  return {
    delivered: () => {
      last = Date.now();
    },
    stop: () => clearInterval(timer),
  };
}
