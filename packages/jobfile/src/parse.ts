/**
 * Job file text → validated documents. YAML (JSON is YAML too), one or more documents separated by `---`.
 * Every problem is reported with the path of the field in the file (`spec.resources.gpus: ...`), all at once.
 */
import { parseAllDocuments } from "yaml";
import type { z } from "zod";
import { API_VERSION, type CapaDocument, KINDS } from "./schema.js";

export interface JobFileIssue {
  /** Dotted path in the document, e.g. `spec.resources.gpus` or `spec.command[0]`; "" for the whole document. */
  path: string;
  message: string;
}

/** A job file that cannot be used; `issues` names every offending field. */
export class JobFileError extends Error {
  override name = "JobFileError";
  constructor(
    readonly source: string,
    readonly issues: JobFileIssue[],
    options?: { cause?: unknown },
  ) {
    super(`${source}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")}`, options);
  }
}

/** Bounds the text we parse: a job file is small; anything this large is a mistake. */
export const MAX_JOB_FILE_BYTES = 1 << 20;
const MAX_DOCUMENTS = 64;

/** Parses every document in `text`; `source` names the file in errors. */
export function parseDocuments(text: string, source = "job file"): CapaDocument[] {
  if (Buffer.byteLength(text) > MAX_JOB_FILE_BYTES) {
    throw new JobFileError(source, [{ path: "", message: `is larger than ${MAX_JOB_FILE_BYTES} bytes` }]);
  }
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const present = list.filter((d) => d.contents !== null || d.errors.length > 0);
  if (present.length === 0) throw new JobFileError(source, [{ path: "", message: "is empty" }]);
  if (present.length > MAX_DOCUMENTS) {
    throw new JobFileError(source, [{ path: "", message: `has more than ${MAX_DOCUMENTS} documents` }]);
  }
  const out: CapaDocument[] = [];
  present.forEach((doc, index) => {
    const where = present.length > 1 ? `${source} (document ${index + 1})` : source;
    if (doc.errors.length > 0) {
      const err = doc.errors[0]!;
      throw new JobFileError(
        where,
        [{ path: "", message: `is not valid YAML: ${err.message.split("\n")[0]!.replace(/:$/, "")}` }],
        {
          cause: err,
        },
      );
    }
    out.push(validateDocument(doc.toJS({ maxAliasCount: 100 }), where));
  });
  return out;
}

/** Exactly one document (what `capa submit -f` takes). */
export function parseDocument(text: string, source = "job file"): CapaDocument {
  const docs = parseDocuments(text, source);
  if (docs.length !== 1) {
    throw new JobFileError(source, [
      { path: "", message: `has ${docs.length} documents; submit takes one (capa apply -f takes several)` },
    ]);
  }
  return docs[0]!;
}

/** Checks one parsed value against the schema of its kind. */
export function validateDocument(value: unknown, source = "job file"): CapaDocument {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new JobFileError(source, [{ path: "", message: "must be a mapping with apiVersion, kind and spec" }]);
  }
  const head = value as { apiVersion?: unknown; kind?: unknown };
  if (head.apiVersion !== API_VERSION) {
    const got = head.apiVersion === undefined ? "it is missing" : `got ${JSON.stringify(head.apiVersion)}`;
    throw new JobFileError(source, [{ path: "apiVersion", message: `must be ${API_VERSION}, ${got}` }]);
  }
  const kinds = Object.keys(KINDS);
  if (typeof head.kind !== "string" || !Object.hasOwn(KINDS, head.kind)) {
    const got = head.kind === undefined ? "it is missing" : `got ${JSON.stringify(head.kind)}`;
    throw new JobFileError(source, [{ path: "kind", message: `must be one of ${kinds.join(", ")}, ${got}` }]);
  }
  const schema = KINDS[head.kind as keyof typeof KINDS];
  const result = schema.safeParse(value, { reportInput: true });
  if (!result.success) throw new JobFileError(source, issuesOf(result.error));
  return result.data;
}

function issuesOf(error: z.ZodError): JobFileIssue[] {
  const out: JobFileIssue[] = [];
  for (const issue of error.issues) {
    const path = formatPath(issue.path);
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: joinPath(path, key), message: "unknown field" });
    } else if (issue.code === "invalid_type" && issue.input === undefined) {
      out.push({ path, message: "is required" });
    } else {
      out.push({ path, message: issue.message });
    }
  }
  return out;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out = joinPath(out, String(part));
  }
  return out;
}

function joinPath(base: string, key: string): string {
  const safe = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? key : JSON.stringify(key);
  if (base === "") return safe;
  return /^[A-Za-z_]/.test(safe) ? `${base}.${safe}` : `${base}[${safe}]`;
}
