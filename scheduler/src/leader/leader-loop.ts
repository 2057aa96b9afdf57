/**
 * A controller loop that runs only on the replica holding the leader lease: every `periodMs`, one round at a
 * time (a slow round is never overlapped by the next), a failed round logged and retried on the next tick.
 * The services and schedules controllers both run on it.
 */
import type { Logger } from "pino";

export function leaderLoop(
  what: string,
  round: () => Promise<void>,
  opts: { isLeader: () => boolean; periodMs: number; logger: Logger },
): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running || !opts.isLeader()) return;
    running = true;
    round()
      .catch((err) => opts.logger.warn({ err }, `${what} tick failed`))
      .finally(() => {
        running = false;
      });
  }, opts.periodMs);
  timer.unref();
  return () => clearInterval(timer);
}
