/**
 * A bounded open-loop load generator (loopback only): `rps` GET requests per second to one address until
 * `stop()` or `maxRequests`, never more than `maxInFlight` at once. Counts answers by status and failures.
 */
import { Agent, request } from "node:http";

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  /** Failures by status ("502") or error code ("ECONNRESET"). */
  failures: Record<string, number>;
}

export function startLoad(address: string, rps: number, options: { maxRequests?: number; maxInFlight?: number } = {}) {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(":")),
    Number(address.slice(address.lastIndexOf(":") + 1)),
  ];
  const agent = new Agent({ keepAlive: true, maxSockets: options.maxInFlight ?? 64 });
  const result: LoadResult = { sent: 0, ok: 0, failed: 0, failures: {} };
  const maxRequests = options.maxRequests ?? 100_000;
  const maxInFlight = options.maxInFlight ?? 64;
  let inFlight = 0;
  let running = true;
  let idle: () => void = () => {};
  const fail = (why: string) => {
    result.failed++;
    result.failures[why] = (result.failures[why] ?? 0) + 1;
  };
  const one = () => {
    result.sent++;
    inFlight++;
    const done = () => {
      inFlight--;
      if (!running && inFlight === 0) idle();
    };
    const req = request({ host, port, path: "/", method: "GET", agent, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => {
        if (res.statusCode === 200) result.ok++;
        else fail(String(res.statusCode));
        done();
      });
    });
    req.once("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
    req.once("error", (err: NodeJS.ErrnoException) => {
      fail(err.code ?? err.message);
      done();
    });
    req.end();
  };
  const started = Date.now();
  const timer = setInterval(() => {
    if (!running) return;
    // Catch up to the schedule (timers are coarse under load), within the in-flight bound.
    const due = Math.floor(((Date.now() - started) / 1000) * rps) - result.sent;
    for (let i = 0; i < due && inFlight < maxInFlight && result.sent < maxRequests; i++) one();
  }, 10);
  return {
    result,
    /** Stops sending and resolves once every request in flight has ended. */
    async stop(): Promise<LoadResult> {
      running = false;
      clearInterval(timer);
      if (inFlight > 0)
        await new Promise<void>((resolve) => {
          idle = resolve;
        });
      agent.destroy();
      return result;
    },
  };
}
