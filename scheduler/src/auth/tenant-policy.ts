/**
 * Operator-set ceilings per tenant (`capa_tenants/<tenant>`): the highest priority its jobs may have, and the max
 * price per GPU-hour given to its jobs that name none, so a runaway provider price never meets an uncapped tenant.
 * Unset fields fall back to the scheduler's defaults. Read at admission from an in-memory copy kept by a watch.
 */
import { jsonCodec, type NatsConnection, type StoreOptions } from "@capa/bus";
import { jetstream } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { Logger } from "pino";
import { bucketOptions } from "./bucket-options.js";

export const TENANTS_BUCKET = "capa_tenants";

export interface TenantPolicyRecord {
  tenant: string;
  maxPriority?: number;
  defaultMaxPrice?: number;
  updatedBy: string;
  updatedAtMs: number;
}

export interface TenantDefaults {
  maxPriority: number;
  defaultMaxPrice: number;
}

const codec = jsonCodec<TenantPolicyRecord>();

export class TenantPolicies {
  private readonly records = new Map<string, TenantPolicyRecord>();
  private stopWatch: (() => void) | undefined;

  private constructor(
    private readonly kv: KV,
    readonly defaults: TenantDefaults,
    private readonly logger: Logger,
  ) {}

  static async open(nc: NatsConnection, defaults: TenantDefaults, logger: Logger, layout: StoreOptions = {}) {
    const kv = await new Kvm(jetstream(nc)).create(TENANTS_BUCKET, bucketOptions(layout, 5));
    const policies = new TenantPolicies(kv, defaults, logger);
    for await (const key of await kv.keys()) {
      const e = await kv.get(key);
      if (e?.operation === "PUT") policies.apply(key, e.value);
    }
    const iter = await kv.watch({ include: "updates" });
    policies.stopWatch = () => iter.stop();
    void (async () => {
      try {
        for await (const e of iter) {
          if (e.operation === "PUT") policies.apply(e.key, e.value);
          else policies.records.delete(e.key);
        }
      } catch (err) {
        logger.warn({ err }, "tenant policy watch ended");
      }
    })();
    return policies;
  }

  private apply(key: string, value: Uint8Array): void {
    try {
      const r = codec.decode(value);
      if (r && typeof r === "object" && r.tenant === key) this.records.set(key, r);
    } catch {
      this.logger.warn({ key }, "ignoring a malformed tenant policy");
    }
  }

  /** The effective ceilings of a tenant. */
  effective(tenant: string): TenantPolicyRecord & { maxPriority: number; defaultMaxPrice: number } {
    const own = this.records.get(tenant);
    return {
      tenant,
      updatedBy: own?.updatedBy ?? "",
      updatedAtMs: own?.updatedAtMs ?? 0,
      maxPriority: own?.maxPriority ?? this.defaults.maxPriority,
      defaultMaxPrice: own?.defaultMaxPrice ?? this.defaults.defaultMaxPrice,
    };
  }

  /** Changes the fields given (a default max price of 0 resets it to the scheduler's default), with compare-and-set against concurrent writers. */
  async set(
    tenant: string,
    change: { maxPriority?: number; defaultMaxPrice?: number },
    actor: string,
    nowMs: number,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.kv.get(tenant);
      const base: TenantPolicyRecord =
        current?.operation === "PUT" ? codec.decode(current.value) : { tenant, updatedBy: "", updatedAtMs: 0 };
      const next: TenantPolicyRecord = { ...base, tenant, updatedBy: actor, updatedAtMs: nowMs };
      if (change.maxPriority !== undefined) next.maxPriority = change.maxPriority;
      if (change.defaultMaxPrice !== undefined) {
        if (change.defaultMaxPrice === 0) delete next.defaultMaxPrice;
        else next.defaultMaxPrice = change.defaultMaxPrice;
      }
      try {
        if (current) await this.kv.update(tenant, codec.encode(next), current.revision);
        else await this.kv.create(tenant, codec.encode(next));
        this.records.set(tenant, next);
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  }

  stop(): void {
    this.stopWatch?.();
  }
}
