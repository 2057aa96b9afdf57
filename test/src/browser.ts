/**
 * A real headless Chromium for page tests: Debian's /usr/bin/chromium (or CAPA_CHROMIUM) driven by playwright-core,
 * which never downloads a browser. Each launch gets a fresh profile directory, removed at close.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = process.env.CAPA_CHROMIUM ?? "/usr/bin/chromium";

/** Where page tests keep their screenshots: test/artifacts/<suite>/ (ignored by git; CI may collect it). */
export function artifactsDir(suite: string): string {
  const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "artifacts", suite);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CAPA_CHROMIUM)`);
  const profile = mkdtempSync(join(tmpdir(), "capa-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
