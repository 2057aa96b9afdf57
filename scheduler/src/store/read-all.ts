/**
 * Reads every live entry of a bucket at start. An entry that does not decode (written by a foreign or broken
 * client) is skipped and reported, never fatal; a store that cannot be read fails the start.
 */
import type { Codec, Store, Versioned } from "@capa/bus";

type Kv = Store["jobs"];

export async function readAll<T>(
  kv: Kv,
  codec: Codec<T>,
  accept: (key: string) => boolean,
  onBad: (key: string, err: unknown) => void,
): Promise<Versioned<T>[]> {
  const keys: string[] = [];
  for await (const key of await kv.keys()) if (accept(key)) keys.push(key);
  const out: Versioned<T>[] = [];
  for (const key of keys) {
    const entry = await kv.get(key);
    if (!entry || entry.operation !== "PUT" || entry.length === 0) continue;
    try {
      out.push({ key, value: codec.decode(entry.value), revision: entry.revision });
    } catch (err) {
      onBad(key, err);
    }
  }
  return out;
}
