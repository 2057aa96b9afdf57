/**
 * One error class per failure mode of the agent. Each keeps the underlying error in `cause`, so a log line or a
 * CLI message can show both what the agent was doing and what the system said.
 */

/** Base class for every nvidia-smi failure: callers that only care "GPU discovery failed" catch this one. */
export class NvidiaSmiError extends Error {
  override name = "NvidiaSmiError";
}

/** The binary is not on PATH (no driver installed, or a CPU-only machine). */
export class NvidiaSmiNotFoundError extends NvidiaSmiError {
  override name = "NvidiaSmiNotFoundError";
}

/** nvidia-smi did not answer in time (a wedged driver does this); its process group was killed. */
export class NvidiaSmiTimeoutError extends NvidiaSmiError {
  override name = "NvidiaSmiTimeoutError";
  constructor(
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(`nvidia-smi did not finish within ${timeoutMs} ms`, options);
  }
}

/** nvidia-smi exited non-zero (driver/library mismatch, GPU fallen off the bus, ...). */
export class NvidiaSmiExitError extends NvidiaSmiError {
  override name = "NvidiaSmiExitError";
  constructor(
    readonly exitCode: number | null,
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    super(`nvidia-smi exited with ${exitCode}${stderr.trim() ? `: ${stderr.trim().slice(0, 500)}` : ""}`, options);
  }
}

/** A line of nvidia-smi output that does not have the queried fields. */
export class NvidiaSmiParseError extends NvidiaSmiError {
  override name = "NvidiaSmiParseError";
}

/** Invalid agent configuration or CLI flag; the message names the flag. */
export class AgentConfigError extends Error {
  override name = "AgentConfigError";
}

/** Host facts (CPU, memory, hostname) could not be read. */
export class HostInfoError extends Error {
  override name = "HostInfoError";
}

/** A runtime price change was refused (bad price list) or the agent could not be reached. */
export class AgentPriceError extends Error {
  override name = "AgentPriceError";
}
