import { Command } from "commander";
import { completionScript, SHELLS, type Shell } from "../completion.js";
import { UsageError } from "../errors.js";

/** `capa completion bash|zsh|fish`: the completion script for a shell, generated from the command tree. */
export function completionCommand(root: () => Command): Command {
  return new Command("completion")
    .description(
      "print a shell completion script (bash: source <(capa completion bash); fish: capa completion fish | source)",
    )
    .argument("<shell>", SHELLS.join(" | "))
    .action((shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell))
        throw new UsageError(`capa completion takes one of ${SHELLS.join(", ")}, got ${JSON.stringify(shell)}`);
      process.stdout.write(completionScript(root(), shell as Shell));
    });
}
