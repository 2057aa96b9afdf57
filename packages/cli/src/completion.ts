/**
 * `capa completion bash|zsh|fish`: shell completion scripts generated from the command tree itself (verbs,
 * sub-verbs and each one's flags), so they never drift from the CLI. bash and zsh share one script (zsh through
 * bashcompinit); fish gets its native `complete` lines. Pure: the tree is a parameter.
 */
import type { Command, Option } from "commander";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

interface Node {
  path: string[];
  subcommands: { name: string; description: string }[];
  flags: { long: string; short?: string; description: string }[];
}

function flagsOf(options: readonly Option[]) {
  return options
    .filter((o) => o.long && !o.hidden)
    .map((o) => ({ long: o.long!, ...(o.short ? { short: o.short } : {}), description: o.description }));
}

/** Every command of the tree with its sub-commands and flags (global flags included everywhere). */
export function commandTree(program: Command): Node[] {
  const globals = flagsOf(program.options as readonly Option[]);
  const nodes: Node[] = [];
  const walk = (cmd: Command, path: string[]) => {
    const visible = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
    nodes.push({
      path,
      subcommands: visible.map((c) => ({ name: c.name(), description: c.description() })),
      flags: [
        ...flagsOf(cmd.options as readonly Option[]),
        ...(path.length > 0 ? globals : []),
        { long: "--help", short: "-h", description: "display help" },
      ],
    });
    for (const c of visible) walk(c, [...path, c.name()]);
  };
  walk(program, []);
  return nodes;
}

export function completionScript(program: Command, shell: Shell): string {
  const nodes = commandTree(program);
  const name = program.name();
  if (shell === "fish") return fishScript(name, nodes);
  const bash = bashScript(name, nodes);
  return shell === "zsh" ? `#compdef ${name}\nautoload -U +X bashcompinit && bashcompinit\n${bash}` : bash;
}

function bashScript(name: string, nodes: Node[]): string {
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, "_")}_complete`;
  const cases = nodes
    .map((n) => {
      const words = [
        ...n.subcommands.map((s) => s.name),
        ...n.flags.flatMap((f) => [f.long, ...(f.short ? [f.short] : [])]),
      ];
      return `    "${n.path.join(" ")}") words="${words.join(" ")}" ;;`;
    })
    .join("\n");
  const known = nodes
    .filter((n) => n.path.length > 0)
    .map((n) => `"${n.path.join(" ")}"`)
    .join(" ");
  return `# ${name} completion for bash (and zsh via bashcompinit). Load it with:
#   source <(${name} completion bash)
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" candidate word i words=""
  local -a known=(${known})
  # The command path: the leading words that name a known (sub)command; flags and their values are skipped.
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -* ]] && continue
    candidate="\${path:+$path }$word"
    for k in "\${known[@]}"; do
      if [[ "$k" == "$candidate" ]]; then path="$candidate"; break; fi
    done
  done
  case "$path" in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F ${fn} ${name}
`;
}

function fishScript(name: string, nodes: Node[]): string {
  const quote = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  const lines = [
    `# ${name} completion for fish. Load it with: ${name} completion fish | source`,
    `complete -c ${name} -f`,
  ];
  for (const n of nodes) {
    const at = n.path.length === 0 ? "__fish_use_subcommand" : `__fish_seen_subcommand_from ${n.path.at(-1)}`;
    for (const s of n.subcommands)
      lines.push(`complete -c ${name} -n ${quote(at)} -a ${s.name} -d ${quote(s.description)}`);
    for (const f of n.flags) {
      const short = f.short ? ` -s ${f.short.replace(/^-/, "")}` : "";
      lines.push(
        `complete -c ${name} -n ${quote(at)} -l ${f.long.replace(/^--/, "")}${short} -d ${quote(f.description)}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
