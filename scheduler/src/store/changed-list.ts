/**
 * Every live entry of a small bucket, listed again only when the bucket changed. A controller that walks its
 * bucket every tick (schedules, services: 2 Hz on the leader, even with nothing in them) would otherwise pay a
 * key listing each time (an ordered consumer created, asked for its info, fed and deleted, then one read per key).
 * Here a tick costs one stream info: the stream's last sequence moves with every write, delete and KV purge (each
 * is a message), and its message count drops with a raw stream purge, so when neither changed since the last
 * listing, that listing is still exactly what is stored. Both are read before the listing, so a write that lands
 * during it moves them past what was recorded and the next call lists again. Entries are handed out as copies (a
 * caller may change what it gets).
 */
import type { TypedKv, Versioned } from "@capa/bus";

export class ChangedList<T> {
  private listed: { version: string; entries: Versioned<T>[] } | undefined;

  constructor(private readonly kv: TypedKv<T>) {}

  async list(): Promise<Versioned<T>[]> {
    const { last_seq, messages } = (await this.kv.kv.status()).streamInfo.state;
    const version = `${last_seq}/${messages}`;
    if (this.listed?.version !== version) this.listed = { version, entries: await this.kv.list() };
    return structuredClone(this.listed.entries);
  }
}
