/**
 * Runs replays off the event loop: each in its own worker thread (worker.ts), one at a time per scheduler, with a
 * wall-clock limit. A second replay while one runs is RESOURCE_EXHAUSTED (retry later), one past its limit is
 * stopped and RESOURCE_EXHAUSTED too; a bad trace or fleet is INVALID_ARGUMENT naming the input, its line and column.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { ResourceExhaustedError, ValidationError } from "@capa/domain";
import type { PolicyResult } from "@capa/replay";
import type { Logger } from "pino";
import type { ReplayFieldNames, ReplayJobInput } from "./request.js";

/** One policy's figures and timeline (its runs stay in the worker). */
export type ReplayPolicySummary = Omit<PolicyResult, "runs">;

export interface ReplayOutput {
  jobs: number;
  agents: number;
  gpus: number;
  seed: number;
  fleetSource: string;
  policies: ReplayPolicySummary[];
  /** The plot as a Vega-Lite spec (what `capa replay --plot` renders, and what the console draws). */
  plot: unknown;
  /** The same plot as SVG, when asked for; else "". */
  plotSvg: string;
  wallSeconds: number;
}

export type ReplayWorkerAnswer =
  | { ok: true; output: ReplayOutput }
  | { ok: false; input: "trace" | "fleet" | "config" | "internal"; message: string };

export class ReplayBusyError extends ResourceExhaustedError {}
export class ReplayTimeoutError extends ResourceExhaustedError {}
/** The worker died or failed for a reason that is not the caller's input (logged; the caller gets INTERNAL). */
export class ReplayWorkerError extends Error {
  override name = "ReplayWorkerError";
}

/**
 * The compiled worker beside this module; under the TypeScript sources (tests) there is none, so the built one
 * in dist/ (scheduler/{src,dist}/replay/ are siblings). It imports @capa/replay's build either way.
 */
function workerFile(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const sibling = join(here, "worker.js");
  return existsSync(sibling) ? sibling : join(here, "..", "..", "dist", "replay", "worker.js");
}

export const DEFAULT_REPLAY_TIMEOUT_MS = 120_000;

export class ReplayRunner {
  private current: Worker | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly timeoutMs = DEFAULT_REPLAY_TIMEOUT_MS,
  ) {}

  async run(input: ReplayJobInput, fields: ReplayFieldNames): Promise<ReplayOutput> {
    if (this.current)
      throw new ReplayBusyError("a replay is already running on this scheduler (one at a time); retry when it ends");
    const worker = new Worker(workerFile(), {
      workerData: input,
      // Plain Node flags only: a parent started with `--conditions capa-source` (the test runner) would make the
      // worker load TypeScript sources it cannot run.
      execArgv: process.execArgv.filter((a) => !a.startsWith("--conditions") && !a.startsWith("-C")),
      // A runaway input must not take the scheduler's memory with it.
      resourceLimits: { maxOldGenerationSizeMb: 1536 },
    });
    this.current = worker;
    try {
      const answer = await new Promise<ReplayWorkerAnswer>((resolve, reject) => {
        const timer = setTimeout(() => {
          void worker.terminate();
          reject(
            new ReplayTimeoutError(
              `the replay ran past its limit of ${Math.round(this.timeoutMs / 1000)}s and was stopped; use a smaller trace, fleet or limit`,
            ),
          );
        }, this.timeoutMs);
        worker.once("message", (m: ReplayWorkerAnswer) => {
          clearTimeout(timer);
          resolve(m);
        });
        worker.once("error", (err) => {
          clearTimeout(timer);
          reject(new ReplayWorkerError(`the replay worker failed: ${err.message}`, { cause: err }));
        });
        worker.once("exit", (code) => {
          clearTimeout(timer);
          reject(new ReplayWorkerError(`the replay worker exited (${code}) without an answer`));
        });
      });
      if (answer.ok) return answer.output;
      if (answer.input === "internal") throw new ReplayWorkerError(answer.message);
      const field = answer.input === "trace" ? fields.traceCsv : answer.input === "fleet" ? fields.fleetCsv : "request";
      throw new ValidationError([{ field, message: answer.message }]);
    } catch (err) {
      if (err instanceof ReplayWorkerError) this.logger.error({ err }, "replay failed");
      throw err;
    } finally {
      this.current = undefined;
      void worker.terminate();
    }
  }

  /** Stops a running replay (scheduler shutdown). */
  async stop(): Promise<void> {
    await this.current?.terminate();
  }
}
