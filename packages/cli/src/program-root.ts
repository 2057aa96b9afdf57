/**
 * The root of the `capa` program and what every verb gets from it, apart from the verbs themselves: program.ts
 * adds every verb, agent-program.ts only `capa agent` (an agent process must not load the others' modules).
 */
import { API_VERSION, CAPA_VERSION } from "@capa/domain";
import { Command } from "commander";
import { FORMAT_COMMANDS } from "./context.js";
import { configureOutput, formatFromFlags, wantsDocument } from "./output.js";

export const CLI_VERSION = CAPA_VERSION;

/** `capa` with its global options and no verb yet. */
export function rootProgram(): Command {
  const program = new Command("capa")
    .description("capa: a distributed GPU scheduler and marketplace broker")
    .version(`${CLI_VERSION} (${API_VERSION})`, "-V, --version", "print the client's version (capa version: both)")
    .option("--addr <host:port>", "scheduler gRPC address (env CAPA_GRPC_ADDR; default 127.0.0.1:50051)")
    .option(
      "--tenant <tenant>",
      "tenant for submit, jobs, quote, bill, receipt list, tenant limits and policy (env CAPA_TENANT; default: the credential's tenant; operators name the tenant they act for)",
    )
    .showHelpAfterError("(run capa <command> --help for usage)");
  return program;
}

/** After the verbs are added: global options in every verb's help, usage errors thrown, `-o` formats. */
export function finishProgram(program: Command): Command {
  // --addr and --tenant work after any verb too; say so in every verb's help.
  const showGlobals = (cmd: Command): void => {
    cmd.configureHelp({ showGlobalOptions: true });
    cmd.commands.forEach(showGlobals);
  };
  program.commands.forEach(showGlobals);
  // Usage errors throw (main.ts exits 2) instead of commander exiting 1 itself; addCommand does not inherit it.
  const throwOnUsageErrors = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(throwOnUsageErrors);
  };
  throwOnUsageErrors(program);
  // `-o json|yaml|name` prints documents: those verbs take their --json path, printJson renders the format.
  program.hook("preAction", (_root, action) => {
    if (!FORMAT_COMMANDS.has(action)) return;
    const flags = action.opts<{ output?: string; json?: boolean }>();
    const format = formatFromFlags(flags);
    configureOutput({ format });
    if (wantsDocument(format)) action.setOptionValue("json", true);
  });
  return program;
}
