import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type Logger, pino } from "pino";

/** Structured logs of in-process components go to a file, so the terminal shows only what people need. */
export function fileLogger(path: string, level: string): Logger {
  mkdirSync(dirname(path), { recursive: true });
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: path, sync: true }));
}

/** Daemons (`capa scheduler`, `capa agent`) log JSON lines to stdout, as containers expect. */
export function stdoutLogger(name: string, level: string): Logger {
  return pino({ name, level });
}
