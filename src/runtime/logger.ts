// Logger port adapters: pino for real nodes (JSON lines, or one readable line per record on a
// terminal), and an in-memory logger for the simulator and tests.
import { pino, type Logger as PinoLogger } from 'pino'
import type { LogFields, Logger } from './ports.ts'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent']

function wrapPino (logger: PinoLogger): Logger {
  return {
    debug: (message, fields) => { logger.debug(fields ?? {}, message) },
    info: (message, fields) => { logger.info(fields ?? {}, message) },
    warn: (message, fields) => { logger.warn(fields ?? {}, message) },
    error: (message, fields) => { logger.error(fields ?? {}, message) },
    child: (bindings) => wrapPino(logger.child(bindings))
  }
}

/** Logs to stderr so a command's stdout stays for its output. */
export function createPinoLogger (options: { level?: LogLevel, bindings?: LogFields } = {}): Logger {
  const logger = pino({ level: options.level ?? 'info', base: options.bindings ?? {} }, pino.destination({ dest: 2, sync: true }))
  return wrapPino(logger)
}

export interface LogRecord { level: Exclude<LogLevel, 'silent'>, message: string, fields: LogFields }

export interface MemoryLogger extends Logger {
  readonly records: LogRecord[]
}

/** Keeps the last `limit` records; used by the simulator and tests. */
export function createMemoryLogger (options: { limit?: number, bindings?: LogFields, records?: LogRecord[] } = {}): MemoryLogger {
  const limit = options.limit ?? 10_000
  const records = options.records ?? []
  const bindings = options.bindings ?? {}
  const log = (level: LogRecord['level']) => (message: string, fields?: LogFields): void => {
    if (records.length >= limit) records.shift()
    records.push({ level, message, fields: { ...bindings, ...fields } })
  }
  return {
    records,
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: (more) => createMemoryLogger({ limit, bindings: { ...bindings, ...more }, records })
  }
}

export function createSilentLogger (): Logger {
  const silent: Logger = { debug () {}, info () {}, warn () {}, error () {}, child: () => silent }
  return silent
}
