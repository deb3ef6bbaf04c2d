// `form-anycast service register NAME`: asks a node's status API to register a service in the
// replicated state; the node allocates its anycast address from the pool and answers once the
// record is durable. Exit 0 registered, 2 bad name, 1 anything else (exists, unreachable).
import { ConfigError } from './config.ts'
import { parseApiUrl, StatusFetchError } from './status-command.ts'
import type { ServiceRecord } from '../protocols/service-registry.ts'

export async function runServiceRegister (options: { api: string, name: string, write: (line: string) => void }): Promise<number> {
  const base = parseApiUrl(options.api)
  const url = new URL('/v1/services', base)
  let response: Response
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: options.name }),
      signal: AbortSignal.timeout(10_000)
    })
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message
    throw new StatusFetchError(`cannot reach the status API at ${base}: ${cause}`)
  }
  let body: { error?: string } & Partial<ServiceRecord>
  try { body = await response.json() as typeof body } catch { throw new StatusFetchError(`${url.href} answered ${response.status} without JSON`) }
  if (response.status === 201 && Array.isArray(body.anycast)) {
    options.write(`service ${options.name} registered: anycast ${body.anycast.join(', ')}`)
    options.write(`serve it by adding {"name": "${options.name}", "prefix": "${body.anycast[0]}/32", "check": …} to "services" in the config of each node that runs it`)
    return 0
  }
  if (response.status === 400) throw new ConfigError('service register', 'NAME', body.error ?? 'rejected')
  throw new StatusFetchError(`${url.href} answered ${response.status}: ${body.error ?? ''}`)
}
