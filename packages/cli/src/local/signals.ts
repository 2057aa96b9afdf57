/**
 * Long-running verbs (`up`, `scheduler`, `agent`) run until SIGINT or SIGTERM, then stop what they started.
 * A second signal while stopping means "now": exit at once with 130.
 */
export function waitForShutdownSignal(onSecond: () => void = () => process.exit(130)): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const handler = (signal: NodeJS.Signals) => {
      if (received) {
        onSecond();
        return;
      }
      received = true;
      resolve(signal);
    };
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
  });
}

/** Runs `stop`, but gives up after `timeoutMs` so a stuck component cannot keep the process alive. */
export async function stopWithin(stop: () => Promise<void>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([stop().then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
