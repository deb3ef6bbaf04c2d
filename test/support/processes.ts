// Helpers for end-to-end tests with real processes on loopback: start the CLI, read its lines,
// poll a node's status API — every wait bounded in time.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../../bin/form-anycast.js', import.meta.url))

export interface CliProcess {
  child: ChildProcess
  lines: string[]
  /** Resolves with the first line matching, or rejects after timeoutMs. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>
  /** Resolves with the exit code (or signal name), or rejects after timeoutMs. */
  exited(timeoutMs: number): Promise<number | string>
  kill(signal?: NodeJS.Signals): void
}

export function startCli (args: string[]): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const waiters: Array<{ pattern: RegExp, resolve: (match: RegExpExecArray) => void }> = []
  const onLine = (line: string): void => {
    lines.push(line)
    for (const waiter of [...waiters]) {
      const match = waiter.pattern.exec(line)
      if (match !== null) { waiters.splice(waiters.indexOf(waiter), 1); waiter.resolve(match) }
    }
  }
  createInterface({ input: child.stdout! }).on('line', onLine)
  createInterface({ input: child.stderr! }).on('line', onLine)
  const exit = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)))
  return {
    child,
    lines,
    waitForLine: async (pattern, timeoutMs) => {
      const seen = lines.map((line) => pattern.exec(line)).find((match) => match !== null)
      if (seen != null) return seen
      return await new Promise<RegExpExecArray>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${lines.join('\n')}`)), timeoutMs)
        waiters.push({ pattern, resolve: (match) => { clearTimeout(timer); resolve(match) } })
      })
    },
    exited: async (timeoutMs) => await Promise.race([
      exit,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms`)), timeoutMs).unref())
    ]),
    kill: (signal = 'SIGTERM') => { if (child.exitCode === null && child.signalCode === null) child.kill(signal) }
  }
}

export async function getJson<T> (url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(3000) })
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`)
  return await response.json() as T
}

/** Polls `check` every intervalMs until it returns true; returns the elapsed ms or throws. */
export async function pollUntil (check: () => Promise<boolean>, options: { timeoutMs: number, intervalMs?: number, label: string }): Promise<number> {
  const started = Date.now()
  let lastError: unknown
  while (Date.now() - started < options.timeoutMs) {
    try {
      if (await check()) return Date.now() - started
    } catch (error) { lastError = error }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100))
  }
  throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.label}${lastError === undefined ? '' : ` (last error: ${(lastError as Error).message})`}`)
}
