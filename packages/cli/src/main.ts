/** Entry point of `capa`: parse, run, and turn any failure into `capa: <one line>` and a non-zero exit. */
import { CommanderError } from "commander";
import { CliError, oneLine, USAGE_EXIT_CODE } from "./errors.js";
import { configureOutput, shouldColour, terminalWidth } from "./output.js";

// `capa logs -f | head` closes our stdout early: that is the reader being done, not a failure.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

configureOutput({
  colour: shouldColour(process.stdout.isTTY, process.env),
  width: terminalWidth(process.stdout.isTTY, process.stdout.columns, process.env),
});

try {
  // `capa agent` (its first word the verb, as a provider runs it) loads only the agent verb's modules.
  const program =
    process.argv[2] === "agent"
      ? (await import("./agent-program.js")).buildAgentProgram()
      : (await import("./program.js")).buildProgram();
  await program.parseAsync(process.argv);
  // Long-running verbs end here after a clean stop; open handles (a gRPC channel, a timer) must not keep us up.
  process.exit(0);
} catch (err) {
  // commander has printed its own message (or the help, or the version): only the exit status is ours.
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : USAGE_EXIT_CODE);
  const message = err instanceof CliError ? err.message : (err as Error).message || String(err);
  process.stderr.write(`capa: ${oneLine(message)}\n`);
  if (process.env.CAPA_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(err instanceof CliError ? err.exitCode : 1);
}
