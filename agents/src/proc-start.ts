/** A process's kernel start time: with its pid, the identity of one process that a later one reusing the pid lacks. */
import { readFileSync } from "node:fs";

/** Field 22 of /proc/<pid>/stat; undefined where there is no /proc (macOS) or no such process. */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses: count fields after its closing ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19];
  } catch {
    return undefined;
  }
}
