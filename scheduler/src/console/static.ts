/**
 * The console's static shell: a fixed list of files (the page, its script and style, and the charting library's
 * browser builds from node_modules), served public because they carry no data; every data call the page makes
 * carries the viewer's API key. Only names in the list are served, so no request path ever reaches the file system.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

interface StaticFile {
  path: string;
  contentType: string;
  /** Library builds change only with an install; the shell itself is revalidated on every load. */
  cacheControl: string;
}

const require = createRequire(import.meta.url);
// scheduler/{src,dist}/console/static.* → scheduler/console/
const SHELL_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "console");
/** The packages' exports name no build file, so find each build beside a file they do export. */
const buildDir = (exported: string) => dirname(require.resolve(exported));

const NO_CACHE = "no-cache";
const LIBRARY_CACHE = "public, max-age=3600";
const JS = "text/javascript; charset=utf-8";

function files(): Record<string, StaticFile> {
  return {
    "": { path: join(SHELL_DIR, "index.html"), contentType: "text/html; charset=utf-8", cacheControl: NO_CACHE },
    "app.js": { path: join(SHELL_DIR, "app.js"), contentType: JS, cacheControl: NO_CACHE },
    "app.css": { path: join(SHELL_DIR, "app.css"), contentType: "text/css; charset=utf-8", cacheControl: NO_CACHE },
    "vendor/vega.min.js": {
      path: join(buildDir("vega/vega-schema.json"), "vega.min.js"),
      contentType: JS,
      cacheControl: LIBRARY_CACHE,
    },
    "vendor/vega-lite.min.js": {
      path: join(buildDir("vega-lite/vega-lite-schema.json"), "vega-lite.min.js"),
      contentType: JS,
      cacheControl: LIBRARY_CACHE,
    },
  };
}

/**
 * The page may run only its own scripts (no inline script, so injected markup cannot execute); Vega compiles its
 * expressions with `Function`, hence 'unsafe-eval'. Data goes only to this origin.
 */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export class ConsoleShell {
  private readonly known = files();
  private readonly cache = new Map<string, Buffer>();

  /** The file for a path under /console/ ("" = the page), or undefined when it is not one of the shell's. */
  get(name: string): { body: Buffer; contentType: string; cacheControl: string } | undefined {
    const file = Object.hasOwn(this.known, name) ? this.known[name] : undefined;
    if (!file) return undefined;
    let body = this.cache.get(name);
    if (!body) {
      body = readFileSync(file.path);
      this.cache.set(name, body);
    }
    return { body, contentType: file.contentType, cacheControl: file.cacheControl };
  }

  names(): string[] {
    return Object.keys(this.known);
  }
}
