// `form-anycast inspect [--port P] [--connect URL ...] [--trace FILE]`: the state-chart debugger.
// Serves on 127.0.0.1 only and opens no browser; prints the URL and runs until SIGINT/SIGTERM.
import { existsSync } from 'node:fs'
import { InvalidArgumentError, type Command } from 'commander'
import { ConfigError } from './config.ts'
import { DEFAULT_MAX_RECORDS, InspectStore, loadTrace, TraceError } from './inspect-store.ts'
import { InspectServer } from './inspect-server.ts'
import { InspectRelay, nodeBaseUrl } from './inspect-relay.ts'
import { InspectTokenError, readInspectToken, tokenProblem } from './inspect-token.ts'

export const DEFAULT_INSPECT_PORT = 7070

export interface InspectCommandIo { out: (line: string) => void, err: (line: string) => void }

export interface InspectOptions { port: number, connect?: string[], trace?: string, maxRecords: number, token?: string, tokenFile?: string }

function integerOption (name: string, min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value)
    if (!/^\d+$/.test(value) || parsed < min || parsed > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
    return parsed
  }
}

export function registerInspectCommand (program: Command, io: InspectCommandIo, setExitCode: (code: number) => void): void {
  program.command('inspect')
    .description('the state-chart debugger: a local web app over a JSONL trace or live nodes (127.0.0.1 only)')
    .option('--port <port>', `HTTP port on 127.0.0.1 (0 for any free port)`, integerOption('--port', 0, 65535), DEFAULT_INSPECT_PORT)
    .option('--connect <url...>', "running nodes' status API URLs (their /v1/inspect streams): http(s):// for Server-Sent Events, ws(s):// for a WebSocket")
    .option('--token <token>', "bearer token for the nodes' /v1/inspect (their statusApi.inspectToken)")
    .option('--token-file <file>', 'read that token from a file')
    .option('--trace <file>', 'a JSONL trace from `form-anycast sim --trace` or a node')
    .option('--max-records <n>', 'most records held in memory', integerOption('--max-records', 1000, 50_000_000), DEFAULT_MAX_RECORDS)
    .action(async (options: InspectOptions) => {
      setExitCode(await runInspect(options, io))
    })
}

export interface RunningInspector { server: InspectServer, store: InspectStore, relay?: InspectRelay, stop: () => Promise<void> }

/** Builds the store, starts the server (and relay); the caller decides how long it runs. */
export async function startInspector (options: InspectOptions, io: InspectCommandIo): Promise<RunningInspector> {
  const connect = options.connect ?? []
  if ((options.trace === undefined) === (connect.length === 0)) throw new ConfigError('form-anycast inspect', '--trace', 'give either --trace FILE or --connect URL ... (one of them)')
  for (const url of connect) {
    try { nodeBaseUrl(url) } catch (error) { throw new ConfigError('form-anycast inspect', '--connect', `${url}: ${(error as Error).message}`) }
  }
  if (options.token !== undefined && options.tokenFile !== undefined) throw new ConfigError('form-anycast inspect', '--token-file', 'give --token or --token-file, not both')
  if ((options.token !== undefined || options.tokenFile !== undefined) && connect.length === 0) throw new ConfigError('form-anycast inspect', options.token !== undefined ? '--token' : '--token-file', 'only applies with --connect')
  let token = options.token
  if (token !== undefined) {
    const problem = tokenProblem(token)
    if (problem !== undefined) throw new ConfigError('form-anycast inspect', '--token', problem)
  }
  if (options.tokenFile !== undefined) {
    try { token = readInspectToken(options.tokenFile) } catch (error) {
      if (error instanceof InspectTokenError) throw new ConfigError('form-anycast inspect', '--token-file', error.message)
      throw error
    }
  }
  let store: InspectStore
  let relay: InspectRelay | undefined
  if (options.trace !== undefined) {
    if (!existsSync(options.trace)) throw new ConfigError('form-anycast inspect', '--trace', `${options.trace}: file not found`)
    try { store = await loadTrace(options.trace, { maxRecords: options.maxRecords }) } catch (error) {
      if (error instanceof TraceError) throw new ConfigError('form-anycast inspect', '--trace', error.message)
      throw error
    }
  } else {
    store = new InspectStore({ maxRecords: options.maxRecords, mode: 'live' })
    relay = new InspectRelay({ store, urls: connect, log: io.err, ...(token === undefined ? {} : { token }) })
  }
  const server = new InspectServer({ store, host: '127.0.0.1', port: options.port, source: options.trace ?? connect.join(' ') })
  try { await server.start() } catch (error) {
    throw new ConfigError('form-anycast inspect', '--port', `cannot listen on 127.0.0.1:${options.port}: ${(error as Error).message}`)
  }
  relay?.start()
  return { server, store, ...(relay === undefined ? {} : { relay }), stop: async () => { await relay?.stop(); await server.stop() } }
}

async function runInspect (options: InspectOptions, io: InspectCommandIo): Promise<number> {
  const running = await startInspector(options, io)
  io.out(`inspect: ${running.server.url}/ (${options.trace === undefined ? `live from ${(options.connect ?? []).join(', ')}` : `trace ${options.trace}`})`)
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await running.stop()
  return 0
}
