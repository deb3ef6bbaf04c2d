// Headless Chromium for the debugger's browser tests (Debian's /usr/bin/chromium via playwright-core),
// and a helper that starts `form-anycast inspect` and reads the URL it prints.
import { chromium, type Browser } from 'playwright-core'
import { startCli, type CliProcess } from './processes.ts'

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export async function launchBrowser (): Promise<Browser> {
  return await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] })
}

export async function startInspectCli (args: string[]): Promise<{ cli: CliProcess, url: string }> {
  const cli = startCli(['inspect', '--port', '0', ...args])
  const match = await cli.waitForLine(/^inspect: (http:\/\/127\.0\.0\.1:\d+)\//, 20_000)
  return { cli, url: match[1]! }
}

/**
 * The browser globals that page callbacks touch. The project compiles without the DOM lib, so
 * callbacks say `(globalThis as unknown as PageGlobals).document`; the cast vanishes at run time.
 */
export interface PageGlobals {
  document: {
    body: { dataset: Record<string, string | undefined> }
    querySelector(selector: string): { getAttribute(name: string): string | null } | null
  }
  inspector: { goto(at: number): void, selectNode(name: string): void, selectActor(id: string): void, showPane(pane: 'chart' | 'sequence' | 'map'): void }
}
