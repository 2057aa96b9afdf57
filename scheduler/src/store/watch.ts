/**
 * Follows a KV bucket's updates and hands each live entry to `onEntry`, until stopped; and knows how far it got.
 *
 * Why more than `kv.watch`: the watch is an ordered consumer, and after every NATS server of the cluster was
 * SIGKILLed and restarted it does not always come back (the fault suite's own watcher saw it, and so did this
 * one: a replica kept planning on assignments it no longer heard about, and a task whose placement commit had an
 * unknown outcome was placed again on another agent while its first assignment had landed — it ran twice). So:
 * - it starts from a given revision (the bucket's last sequence read before the caller loaded it), so nothing
 *   written between the load and the watch is missed;
 * - a watchdog re-subscribes from the revision after the last one delivered when the bucket's stream is ahead
 *   and nothing arrived for `stallMs`. A watch of some keys only (`*` skips the jobs bucket's `explain.` keys)
 *   may be "behind" a stream whose last message it filters out, so it re-subscribes once per new stream
 *   position, and again only after ten stall periods;
 * - `catchUp()` resolves once every revision the stream held when it was called has been delivered (only for a
 *   watch of every key, `>`): callers that must not decide on a stale view (a new leader's recovery, adopting
 *   an uncertain commit) call it first;
 * - a stream that came back *behind* what was delivered (every server SIGKILLed: nats-server 2.9 flushes on its
 *   own schedule, and a restart can lose acknowledged writes, whose revisions new writes then reuse) is replayed
 *   whole, its entries marked `replayed` so a cache takes them even at a lower revision than it holds. Seen by
 *   the watchdog and by `catchUp` (a new leader's recovery, before it writes anything).
 */
import type { Store } from "@capa/bus";
import type { Logger } from "pino";

type Kv = Store["jobs"];

export interface BucketWatch {
  stop(): void;
  /** The last revision delivered (or the one the watch started after). */
  readonly delivered: number;
  /** Resolves once every revision the bucket holds now was delivered; rejects (WatchBehind) after `timeoutMs`. */
  catchUp(timeoutMs?: number): Promise<void>;
}

export interface WatchedEntry {
  key: string;
  value: Uint8Array;
  revision: number;
  deleted: boolean;
  /** Part of a replay after the stream came back behind this watch: the store's truth, even if older. */
  replayed?: boolean;
}

export interface WatchOptions {
  /** Deliver revisions after this one (the bucket's last revision before the caller's load); 0: from now. */
  after?: number;
  /** Nothing delivered for this long while the stream is ahead: re-subscribe. */
  stallMs?: number;
}

/** The watch did not deliver what the bucket holds in time (the store is down, or the consumer is stuck). */
export class WatchBehind extends Error {
  override readonly name = "WatchBehind";
  constructor(
    readonly bucket: string,
    readonly delivered: number,
    readonly target: number,
    options?: { cause: unknown },
  ) {
    super(`the watch of ${bucket} delivered revision ${delivered}, the bucket is at ${target}`, options);
  }
}

const DEFAULT_STALL_MS = 3_000;
const RETRY_MS = 500;

/** The bucket's last revision (its stream's last sequence), as the stream leader answers. */
export async function lastRevision(kv: Kv): Promise<number> {
  return (await kv.status()).streamInfo.state.last_seq;
}

export async function watchBucket(
  kv: Kv,
  key: string,
  onEntry: (entry: WatchedEntry) => void,
  logger: Logger,
  options: WatchOptions = {},
): Promise<BucketWatch> {
  const stallMs = options.stallMs ?? DEFAULT_STALL_MS;
  const status = await kv.status();
  const bucket = status.bucket;
  let delivered = options.after ?? status.streamInfo.state.last_seq;
  let stopped = false;
  let lastEntryAt = Date.now();
  /** The stream position the watchdog last re-subscribed for, and when (filtered watches only). */
  let resubscribedFor = 0;
  let resubscribedAtMs = 0;
  const everyKey = key === ">";
  let current: { stop(): void } | undefined;
  const waiters = new Set<() => void>();
  /** While replaying a stream that came back behind: entries up to this revision are marked `replayed`. */
  let replayUntil = 0;

  /** The stream is behind what was delivered: replay it from its first message (each key's latest value). */
  const regressed = (last: number) => {
    if (last >= delivered) return false;
    logger.warn(
      { bucket, delivered, last },
      "KV stream came back behind this watch (acknowledged writes lost in a restart): replaying it whole",
    );
    replayUntil = last;
    delivered = 0;
    current?.stop();
    return true;
  };

  const subscribe = async () => {
    const iter = await kv.watch({ key, include: "updates", resumeFromRevision: delivered + 1 });
    current = iter;
    lastEntryAt = Date.now();
    for await (const e of iter) {
      lastEntryAt = Date.now();
      if (e.revision <= delivered) continue; // delivered before a re-subscribe
      delivered = e.revision;
      const replayed = e.revision <= replayUntil;
      if (!replayed) replayUntil = 0;
      try {
        onEntry({
          key: e.key,
          value: e.value,
          revision: e.revision,
          deleted: e.operation !== "PUT",
          ...(replayed && { replayed }),
        });
      } catch (err) {
        logger.warn({ err, key: e.key }, "ignoring a bad KV entry");
      }
      for (const wake of waiters) wake();
    }
  };
  void (async () => {
    while (!stopped) {
      try {
        await subscribe();
      } catch (err) {
        if (!stopped) logger.warn({ err, key, bucket }, "KV watch ended; re-subscribing");
      }
      current = undefined;
      if (!stopped) await new Promise((r) => setTimeout(r, RETRY_MS).unref());
    }
  })();

  const watchdog = setInterval(
    () => {
      if (stopped || !current || Date.now() - lastEntryAt < stallMs) return;
      lastRevision(kv)
        .then((last) => {
          if (regressed(last) || last <= delivered || !current) return;
          const again = last > resubscribedFor || Date.now() - resubscribedAtMs >= 10 * stallMs;
          if (!everyKey && !again) return;
          resubscribedFor = last;
          resubscribedAtMs = Date.now();
          logger.warn({ bucket, delivered, last }, "KV watch stalled behind its stream; re-subscribing");
          current.stop();
        })
        .catch(() => undefined); // the store is down: check again later
    },
    Math.max(100, Math.floor(stallMs / 2)),
  );
  watchdog.unref();

  return {
    get delivered() {
      return delivered;
    },
    stop() {
      stopped = true;
      clearInterval(watchdog);
      current?.stop();
    },
    async catchUp(timeoutMs = 10_000) {
      // A filtered watch may never deliver the stream's last revision (it is another key's).
      if (!everyKey) throw new Error(`catchUp needs a watch of every key of ${bucket}, not '${key}'`);
      let target: number;
      try {
        target = await lastRevision(kv);
      } catch (err) {
        throw new WatchBehind(bucket, delivered, Number.NaN, { cause: err });
      }
      regressed(target);
      if (delivered >= target) return;
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          clearTimeout(timer);
          waiters.delete(wake);
          if (err) reject(err);
          else resolve();
        };
        const wake = () => {
          if (delivered >= target) done();
        };
        const timer = setTimeout(() => done(new WatchBehind(bucket, delivered, target)), timeoutMs);
        waiters.add(wake);
      });
    },
  };
}
