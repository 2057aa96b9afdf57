/** Test helper: an in-memory stand-in for the part of a NATS KV that TypedKv and BudgetStore use. */
import { TypedKv } from "@capa/bus";
import { BudgetStore } from "@capa/ledger";
import { decodeTenantBudget, encodeTenantBudget } from "@capa/market";
import type { KV } from "@nats-io/kv";

/** The part of a NATS KV that TypedKv and BudgetStore use, in memory, with revisions and CAS. */
export function memoryKv(): KV {
  const data = new Map<string, { value: Uint8Array; revision: number }>();
  let seq = 0;
  const conflict = (key: string) => new Error(`wrong last sequence for ${key}`);
  const kv = {
    async get(key: string) {
      const e = data.get(key);
      return e && { key, operation: "PUT", length: e.value.length, value: e.value, revision: e.revision };
    },
    async create(key: string, value: Uint8Array) {
      if (data.has(key)) throw conflict(key);
      data.set(key, { value, revision: ++seq });
      return seq;
    },
    async update(key: string, value: Uint8Array, revision: number) {
      if (data.get(key)?.revision !== revision) throw conflict(key);
      data.set(key, { value, revision: ++seq });
      return seq;
    },
    async delete(key: string, opts?: { previousSeq?: number }) {
      if (opts?.previousSeq !== undefined && data.get(key)?.revision !== opts.previousSeq) throw conflict(key);
      data.delete(key);
    },
    async purge(key: string) {
      data.delete(key);
    },
    async keys(filter?: string) {
      const prefix = filter?.endsWith(">") ? filter.slice(0, -1) : undefined;
      const keys = [...data.keys()].filter(
        (k) => filter === undefined || (prefix ? k.startsWith(prefix) : k === filter),
      );
      return (async function* () {
        yield* keys;
      })();
    },
  };
  return kv as unknown as KV;
}

export function budgetStore(): BudgetStore {
  return new BudgetStore(new TypedKv(memoryKv(), { encode: encodeTenantBudget, decode: decodeTenantBudget }));
}
