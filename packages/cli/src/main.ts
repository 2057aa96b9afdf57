/** Entry point of `capa`: parse, run, and turn any failure into `capa: <one line>` and a non-zero exit. */
import { CliError, oneLine } from "./errors.js";
import { buildProgram } from "./program.js";

// `capa logs -f | head` closes our stdout early: that is the reader being done, not a failure.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

try {
  await buildProgram().parseAsync(process.argv);
  // Long-running verbs end here after a clean stop; open handles (a gRPC channel, a timer) must not keep us up.
  process.exit(0);
} catch (err) {
  const message = err instanceof CliError ? err.message : (err as Error).message || String(err);
  process.stderr.write(`capa: ${oneLine(message)}\n`);
  if (process.env.CAPA_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(err instanceof CliError ? err.exitCode : 1);
}
