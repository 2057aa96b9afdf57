/**
 * API keys in KV (`capa_keys/<keyId>` → the key's record, the secret's hash only) and the in-memory KeyTable the
 * gRPC edge checks every call against. The table is loaded at start and kept current by a watch of the bucket, so
 * authentication costs no store read; a revocation deletes the record, and the replica that revoked drops it from
 * its table before answering (the others follow their watch within milliseconds).
 */

import { type KeyRecord, KeyTable, mintKey, type NewKeyInput, parseKeyRecord } from "@capa/auth";
import { jsonCodec, type NatsConnection, type StoreOptions } from "@capa/bus";
import { NotFoundError } from "@capa/domain";
import { jetstream } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { Logger } from "pino";
import { bucketOptions } from "./bucket-options.js";

export const KEYS_BUCKET = "capa_keys";
const codec = jsonCodec<unknown>();

export class KeyStore {
  readonly table = new KeyTable();
  private stopWatch: (() => void) | undefined;

  private constructor(
    private readonly kv: KV,
    private readonly logger: Logger,
  ) {}

  static async open(nc: NatsConnection, logger: Logger, layout: StoreOptions = {}): Promise<KeyStore> {
    const kv = await new Kvm(jetstream(nc)).create(KEYS_BUCKET, bucketOptions(layout, 1));
    const store = new KeyStore(kv, logger);
    await store.load();
    return store;
  }

  /** Everything now in the bucket, then every change after it (one watch from the start does both). */
  private async load(): Promise<void> {
    const iter = await this.kv.watch({ include: "" });
    let resolveLoaded!: () => void;
    const loaded = new Promise<void>((r) => {
      resolveLoaded = r;
    });
    // The watcher marks the end of the initial values; an empty bucket has none.
    const pending = await this.kv.status().then((s) => s.values);
    if (pending === 0) resolveLoaded();
    let seen = 0;
    this.stopWatch = () => iter.stop();
    void (async () => {
      try {
        for await (const e of iter) {
          if (e.operation === "PUT") {
            const record = parseKeyRecord(safeDecode(e.value));
            if (record && record.keyId === e.key) this.table.put(record);
            else {
              this.table.remove(e.key);
              this.logger.warn({ key: e.key }, "ignoring a malformed API key record");
            }
          } else this.table.remove(e.key);
          if (++seen >= pending || e.delta === 0) resolveLoaded();
        }
      } catch (err) {
        this.logger.warn({ err }, "API key watch ended");
      }
    })();
    await loaded;
  }

  async create(input: NewKeyInput): Promise<{ token: string; record: KeyRecord }> {
    const key = mintKey(input);
    await this.kv.create(key.record.keyId, codec.encode(key.record));
    this.table.put(key.record);
    return key;
  }

  /** Registers a key whose token the operator chose (the bootstrap token); idempotent. */
  async register(record: KeyRecord): Promise<void> {
    await this.kv.put(record.keyId, codec.encode(record));
    this.table.put(record);
  }

  async revoke(keyId: string): Promise<KeyRecord> {
    const record = this.table.get(keyId) ?? parseKeyRecord(safeDecode((await this.kv.get(keyId))?.value));
    if (!record) throw new NotFoundError(`key ${keyId} not found`);
    await this.kv.delete(keyId);
    this.table.remove(keyId);
    return record;
  }

  stop(): void {
    this.stopWatch?.();
  }
}

function safeDecode(value: Uint8Array | undefined): unknown {
  if (!value || value.length === 0) return undefined;
  try {
    return codec.decode(value);
  } catch {
    return undefined;
  }
}
