/** Follows a KV bucket's updates (from "now") and hands each live entry to `onEntry`, until stopped. */
import type { Store } from "@capa/bus";
import type { Logger } from "pino";

type Kv = Store["jobs"];

export interface BucketWatch {
  stop(): void;
}

export interface WatchedEntry {
  key: string;
  value: Uint8Array;
  revision: number;
  deleted: boolean;
}

export async function watchBucket(
  kv: Kv,
  key: string,
  onEntry: (entry: WatchedEntry) => void,
  logger: Logger,
): Promise<BucketWatch> {
  const iter = await kv.watch({ key, include: "updates" });
  void (async () => {
    try {
      for await (const e of iter) {
        try {
          onEntry({ key: e.key, value: e.value, revision: e.revision, deleted: e.operation !== "PUT" });
        } catch (err) {
          logger.warn({ err, key: e.key }, "ignoring a bad KV entry");
        }
      }
    } catch (err) {
      logger.warn({ err, key }, "KV watch ended");
    }
  })();
  return { stop: () => iter.stop() };
}
