import { JOB_STATES, type JobState } from "@capa/domain";
import { InvalidArgumentError } from "commander";

export type { JobState };

/** "running", "RUNNING" or "JOB_STATE_RUNNING" → "running"; anything else is a usage error. */
export function parseJobStateName(value: string): JobState {
  const name = value
    .trim()
    .toLowerCase()
    .replace(/^job_state_/, "") as JobState;
  if (!JOB_STATES.includes(name)) {
    throw new InvalidArgumentError(`unknown job state ${JSON.stringify(value)} (one of ${JOB_STATES.join(", ")})`);
  }
  return name;
}

/** Commander collector for a repeatable, comma-separated `--state`. */
export function collectJobStates(value: string, previous: JobState[] = []): JobState[] {
  return [...previous, ...value.split(",").filter(Boolean).map(parseJobStateName)];
}
