/** @capa/jobfile: the capa/v1 job file (YAML/JSON) — schema, parser with field paths, JobSpec conversion. */
export { DurationError, formatDuration, MAX_DURATION_SECONDS, parseDuration } from "./duration.js";
export {
  formatPath,
  JobFileError,
  type JobFileIssue,
  MAX_JOB_FILE_BYTES,
  parseDocument,
  parseDocuments,
  validateDocument,
} from "./parse.js";
export { scheduleSpecFromDocument } from "./schedule.js";
export {
  API_VERSION,
  type CapaDocument,
  type DocumentKind,
  DURATION_PATTERN,
  documentSchema,
  type JobDocument,
  type JobFileSpec,
  jobDocumentSchema,
  jsonSchema,
  KINDS,
  type ScheduleDocument,
  type ServiceDocument,
  scheduleDocumentSchema,
  serviceDocumentSchema,
} from "./schema.js";
export { durationMs, serviceSpecJsonFromDocument } from "./service.js";
export {
  DEFAULT_RETRY_BACKOFF,
  DEFAULT_RETRY_ON,
  FILE_PATH_OF_WIRE_FIELD,
  filePathOfWireField,
  jobDocumentFromSpec,
  jobSpecFromDocument,
  type SecretResolver,
  specIssues,
} from "./spec.js";
