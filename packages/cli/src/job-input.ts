/**
 * Where submit, quote and simulate get their spec: a job file (`-f job.yaml`), the spec flags, or both (flags typed
 * on the command line override the file), and the command strictly after `--`. Two silent mistakes are refused
 * with a one-line hint: `capa submit job.yaml` (the file run as a command, exit 127) and a stray word such as
 * `hours` in `--duration 2 hours` (made the command).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve as resolvePath } from "node:path";
import type { JobSpec } from "@capa/domain";
import {
  type CapaDocument,
  JobFileError,
  jobSpecFromDocument,
  parseDocument,
  parseDocuments,
  type SecretResolver,
} from "@capa/jobfile";
import type { Command } from "commander";
import { CliError, UsageError } from "./errors.js";
import { type SpecFlags, specFromFlags } from "./spec.js";

/** The arguments the user typed (the root command keeps them; subcommands see only their operands). */
function rawArgs(cmd: Command): readonly string[] {
  let root = cmd;
  while (root.parent) root = root.parent;
  return (root as unknown as { rawArgs?: string[] }).rawArgs ?? [];
}

const FILE_LIKE = /\.(ya?ml|json)$/i;

function looksLikeFile(arg: string): boolean {
  if (FILE_LIKE.test(arg)) return true;
  try {
    return /[/.]/.test(arg) && existsSync(arg) && statSync(arg).isFile() && !/^\.{0,2}\//.test(arg);
  } catch {
    return false;
  }
}

/**
 * The command the user gave after `--`; throws when an operand came before it (or there is no `--` at all).
 * Commander drops the `--` itself, so the operands must be exactly the raw arguments after the first `--`.
 */
export function commandAfterDashes(cmd: Command, operands: readonly string[], verb: string): string[] {
  const raw = rawArgs(cmd);
  const dashes = raw.indexOf("--");
  const after = dashes < 0 ? [] : raw.slice(dashes + 1);
  const stray = operands.length - after.length;
  const ok = stray === 0 && operands.every((arg, i) => arg === after[i]);
  if (ok) return [...operands];
  const first = operands[0]!;
  if (looksLikeFile(first)) {
    throw new UsageError(
      `${JSON.stringify(first)} looks like a job file, not a command: use capa ${verb} -f ${first} (a command goes after --)`,
    );
  }
  throw new UsageError(
    `${JSON.stringify(first)} is not after --: a command goes after -- (capa ${verb} [flags] -- CMD ARGS); ` +
      "if it belongs to a flag's value, quote the value",
  );
}

/** Reads a job file (`-` = stdin); a missing or unreadable file is a one-line error naming it. */
export function readJobFile(path: string): string {
  try {
    return readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (err as Error).message;
    throw new CliError(`cannot read job file ${path}: ${why}`);
  }
}

/** All documents of a job file, as CLI errors. */
export function loadDocuments(path: string, multiple: boolean): CapaDocument[] {
  const text = readJobFile(path);
  const source = path === "-" ? "stdin" : path;
  try {
    return multiple ? parseDocuments(text, source) : [parseDocument(text, source)];
  } catch (err) {
    if (err instanceof JobFileError) throw new CliError(err.message);
    throw err;
  }
}

/**
 * `secrets:` references, read on the submitting machine: `{env: NAME}` from this process's environment, `{file:
 * path}` from a file (relative to the job file's directory; one trailing newline dropped). The values travel like
 * `--secret` ones: delivered to the task, masked as *** by the API.
 */
export function secretResolver(source: string, env: NodeJS.ProcessEnv = process.env): SecretResolver {
  const base = source === "stdin" ? process.cwd() : dirname(resolvePath(source));
  return (ref) => {
    if ("env" in ref) {
      const value = env[ref.env];
      if (value === undefined) throw new Error(`environment variable ${ref.env} is not set`);
      return value;
    }
    const path = isAbsolute(ref.file) ? ref.file : join(base, ref.file);
    try {
      return readFileSync(path, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(`cannot read ${ref.file}: ${code === "ENOENT" ? "no such file" : (err as Error).message}`);
    }
  };
}

/** `source` names the document in errors; `path` is the file it came from ("stdin" for -), for `secrets: {file}`. */
export function jobSpecOf(doc: CapaDocument, source: string, path = source): JobSpec {
  try {
    return jobSpecFromDocument(doc, source, secretResolver(path));
  } catch (err) {
    if (err instanceof JobFileError) throw new CliError(err.message);
    throw err;
  }
}

export interface ResolveOptions {
  verb: string;
  /** Used when neither `--` nor the file gives a command (quote, simulate: `true`); absent = required. */
  defaultCommand?: string[];
}

/** The spec for this invocation: file (if any), then the typed flags, then the command after `--`. */
export function resolveSpec(
  cmd: Command,
  flags: SpecFlags,
  operands: readonly string[],
  opts: ResolveOptions,
): JobSpec {
  const command = commandAfterDashes(cmd, operands, opts.verb);
  let spec: JobSpec;
  if (flags.file !== undefined) {
    const [doc] = loadDocuments(flags.file, false);
    if (doc!.kind !== "Job") throw new CliError(`${flags.file}: capa ${opts.verb} takes a kind: Job document`);
    const base = jobSpecOf(doc!, flags.file === "-" ? "stdin" : flags.file);
    spec = specFromFlags(flags, command, base, (flag) => cmd.getOptionValueSource(flag) === "cli");
  } else {
    spec = specFromFlags(flags, command, undefined, (flag) => cmd.getOptionValueSource(flag) === "cli");
  }
  if (spec.template.command.length === 0) {
    if (!opts.defaultCommand) {
      throw new UsageError(
        `capa ${opts.verb} needs a command after -- (capa ${opts.verb} [flags] -- CMD ARGS) or a job file (-f job.yaml)`,
      );
    }
    spec.template.command = [...opts.defaultCommand];
  }
  return spec;
}
