/**
 * Scheduler HA on the client side: `CAPA_GRPC_ADDR` / `--addr` may list several replicas
 * (`host1:50051,host2:50051`, or one `dns:///name:port` target that grpc-js resolves to every address). A call
 * that fails UNAVAILABLE (replica down, or its store briefly unavailable, e.g. while a stream elects a new
 * leader) moves to the next address and is retried with exponential backoff (p-retry), within a time budget.
 * Only UNAVAILABLE is retried: the call never reached a replica's handler, or the handler failed before
 * writing; writes are idempotent anyway (SubmitJob carries a request id, cancel and drain are level-set).
 * A follower that cannot forward a write names the leader's address (`capa-leader-address` trailer); when that
 * address is one of the list, the retry goes straight to it.
 */
import pRetry from "p-retry";

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** No new attempt starts after this long. */
  maxElapsedMs: number;
}

/** Rides out a leader failover (lease TTL 8 s) or a stream leader election (a few seconds). */
export const DEFAULT_RETRY: RetryPolicy = { retries: 10, minDelayMs: 100, maxDelayMs: 2_000, maxElapsedMs: 20_000 };

export class AddressListError extends Error {
  override name = "AddressListError";
}

/** `a:1, b:2` → ["a:1", "b:2"]; a `dns:` target stays one entry (grpc-js resolves it to all its addresses). */
export function parseAddresses(value: string): string[] {
  const list = value
    .split(",")
    .map((a) => a.trim())
    .filter(Boolean);
  if (list.length === 0) throw new AddressListError("no scheduler address given (--addr or CAPA_GRPC_ADDR)");
  for (const address of list) {
    if (address.startsWith("dns:")) continue;
    if (!/^(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}$/.test(address))
      throw new AddressListError(`scheduler address ${JSON.stringify(address)} is not HOST:PORT or dns:///HOST:PORT`);
  }
  return list;
}

/** Which replica the next call goes to: the last one that answered, the next one after a failure. */
export class AddressRotation {
  private index = 0;
  constructor(readonly addresses: readonly string[]) {
    if (addresses.length === 0) throw new AddressListError("no scheduler address given");
  }
  get current(): string {
    return this.addresses[this.index]!;
  }
  /**
   * Moves on after a failure on `address` (unless another call already moved on): to `hint` (the leader a
   * follower named) when it is one of the addresses, else to the next one.
   */
  failed(address: string, hint?: string): void {
    if (this.current !== address) return;
    const hinted = hint ? this.addresses.indexOf(hint) : -1;
    this.index = hinted >= 0 && hint !== address ? hinted : (this.index + 1) % this.addresses.length;
  }
}

/** Runs `call` on the current address; on an error `retryable` accepts, moves on and retries with backoff. */
export async function withFailover<T>(
  rotation: AddressRotation,
  call: (address: string) => Promise<T>,
  retryable: (err: unknown) => boolean,
  policy: RetryPolicy = DEFAULT_RETRY,
  hint: (err: unknown) => string | undefined = () => undefined,
): Promise<T> {
  const started = Date.now();
  return pRetry(
    async () => {
      const address = rotation.current;
      try {
        return await call(address);
      } catch (err) {
        if (retryable(err)) rotation.failed(address, hint(err));
        throw err;
      }
    },
    {
      retries: policy.retries,
      minTimeout: policy.minDelayMs,
      maxTimeout: policy.maxDelayMs,
      factor: 2,
      randomize: true,
      shouldRetry: (err) => retryable(err) && Date.now() - started < policy.maxElapsedMs,
    },
  );
}
