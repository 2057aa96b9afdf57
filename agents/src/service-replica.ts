/**
 * What makes a task a service replica (its env carries `CAPA_SERVICE`, set by the scheduler's service
 * controller): the agent assigns it a free port (`$PORT`, bound on the agent's service host), probes it for
 * readiness (HTTP GET on `CAPA_READINESS_PATH` answering 2xx, or a TCP connect when the path is empty) every
 * `CAPA_READINESS_PERIOD_MS`, and reports ready / not ready on `capa.v1.task.<taskId>.ready` at every change and
 * once per period (the scheduler trusts a report for a few periods only: an agent that dies drops out).
 * A ready replica turns not ready after `CAPA_READINESS_FAILURES` consecutive failed probes. Model metrics the
 * replica prints (`CAPA_METRICS {...}` on stdout, model-metrics.ts) ride along with every report.
 */
import { request } from "node:http";
import { connect, createServer } from "node:net";
import * as pb from "@capa/api";
import { subjects } from "@capa/bus";
import type { TaskAssignment } from "@capa/domain";
import type { Logger } from "pino";
import { ModelMetrics } from "./model-metrics.js";

export interface ReplicaProbeSpec {
  service: string;
  httpPath: string;
  periodMs: number;
  failureThreshold: number;
}

/** Undefined for a task that is not a service replica. */
export function replicaProbeSpec(a: TaskAssignment): ReplicaProbeSpec | undefined {
  const env = a.template.env;
  if (!env.CAPA_SERVICE) return undefined;
  const num = (v: string | undefined, dflt: number, lo: number, hi: number) => {
    const n = Number(v);
    return Number.isInteger(n) && n >= lo && n <= hi ? n : dflt;
  };
  return {
    service: env.CAPA_SERVICE,
    httpPath: env.CAPA_READINESS_PATH ?? "",
    periodMs: num(env.CAPA_READINESS_PERIOD_MS, 1_000, 100, 60_000),
    failureThreshold: num(env.CAPA_READINESS_FAILURES, 2, 1, 100),
  };
}

/** A port free on `host` now (the OS picks it); the task binds it moments later. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** One probe: resolves "" when healthy, else why not. Never rejects. */
export function probeOnce(host: string, port: number, httpPath: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    if (httpPath === "") {
      const socket = connect({ host, port });
      const done = (why: string) => {
        socket.destroy();
        resolve(why);
      };
      socket.setTimeout(timeoutMs, () => done("tcp connect timed out"));
      socket.once("connect", () => done(""));
      socket.once("error", (err) => done(`tcp: ${err.message}`));
      return;
    }
    const req = request({ host, port, path: httpPath, method: "GET", timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 300 ? "" : `GET ${httpPath} answered ${code}`);
    });
    req.once("timeout", () => req.destroy(new Error("timed out")));
    req.once("error", (err) => resolve(`GET ${httpPath}: ${err.message}`));
    req.end();
  });
}

export interface Publisher {
  publish(subject: string, data: Uint8Array): void;
}

export class ReplicaProber {
  private timer: NodeJS.Timeout | undefined;
  private ready = false;
  private failures = 0;
  private message = "not probed yet";
  private probing = false;
  private stopped = false;
  private readonly metrics = new ModelMetrics();
  port = 0;

  constructor(
    private readonly a: TaskAssignment,
    private readonly spec: ReplicaProbeSpec,
    private readonly deps: { agentId: string; host: string; publisher: Publisher; logger: Logger },
  ) {}

  /** Picks the replica's port; call before the process starts (it goes into `$PORT`). */
  async assignPort(): Promise<number> {
    this.port = await freePort(this.deps.host);
    return this.port;
  }

  /** The task's stdout: `CAPA_METRICS {...}` lines are its model metrics, sent with each readiness report. */
  observeOutput(stream: "stdout" | "stderr", data: Buffer): void {
    if (stream === "stdout") this.metrics.write(data);
  }

  /** Starts probing (the process runs). */
  start(): void {
    if (this.stopped || this.timer) return;
    this.timer = setInterval(() => void this.probe(), this.spec.periodMs);
    void this.probe();
  }

  /** The process ends: not ready from now on, said once. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.ready = false;
    this.message = "task ended";
    this.report();
  }

  private async probe(): Promise<void> {
    if (this.probing || this.stopped) return;
    this.probing = true;
    try {
      const why = await probeOnce(this.deps.host, this.port, this.spec.httpPath, Math.min(this.spec.periodMs, 2_000));
      if (this.stopped) return;
      const was = this.ready;
      if (why === "") {
        this.failures = 0;
        this.ready = true;
        this.message = "";
      } else {
        this.failures++;
        this.message = why;
        if (!this.ready || this.failures >= this.spec.failureThreshold) this.ready = false;
      }
      if (was !== this.ready)
        this.deps.logger.info({ taskId: this.a.taskId, ready: this.ready, why }, "replica readiness changed");
      this.report();
    } finally {
      this.probing = false;
    }
  }

  private report(): void {
    const msg = pb.TaskReadiness.encode({
      taskId: this.a.taskId,
      jobId: this.a.jobId,
      agentId: this.deps.agentId,
      epoch: this.a.epoch,
      ready: this.ready,
      host: this.deps.host,
      port: this.port,
      periodMs: this.spec.periodMs,
      sentAtMs: Date.now(),
      message: this.message,
      metrics: this.metrics.snapshot(),
    }).finish();
    try {
      this.deps.publisher.publish(subjects.taskReady(this.a.taskId, this.deps.agentId), msg);
    } catch (err) {
      // Disconnected: the next period re-sends; the scheduler meanwhile stops trusting the last report.
      this.deps.logger.debug({ err, taskId: this.a.taskId }, "readiness report not sent");
    }
  }
}
