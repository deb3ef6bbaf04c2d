// `form-anycast status`: what a running node sees — its peers' sessions and gossip members —
// as tables for people or JSON for scripts.
import type { MemberSummary, NodeStatus, PeerSummary } from './node.ts'
import type { RouteEntry } from '../protocols/routes.ts'
import type { OriginHealthView, ServiceHealthView } from './control-plane.ts'
import type { LeaseView } from './lease-manager.ts'
import { ConfigError } from './config.ts'
import type { DataplaneView } from './dataplane-reconciler.ts'

export class StatusFetchError extends Error {
  override name = 'StatusFetchError'
}

async function getJson<T> (base: string, path: string, signal: AbortSignal): Promise<T> {
  const url = new URL(path, base)
  let response: Response
  try {
    response = await fetch(url, { signal })
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message
    throw new StatusFetchError(`cannot reach the status API at ${base}: ${cause}`)
  }
  if (!response.ok) throw new StatusFetchError(`${url.href} answered ${response.status}`)
  return await response.json() as T
}

/** GET /v1/leases answer; a node without replicated state answers 404 (undefined here). */
export interface LeasesAnswer { nodeId: string, unicast: string | null, nowMs: number, leases: LeaseView[] }

async function getLeases (base: string, signal: AbortSignal): Promise<LeasesAnswer | undefined> {
  try { return await getJson<LeasesAnswer>(base, '/v1/leases', signal) } catch (error) {
    if (error instanceof StatusFetchError && / answered 404$/.test(error.message)) return undefined
    throw error
  }
}

/** GET /v1/dataplane; a node without a dataplane answers 404 (undefined here). */
async function getDataplane (base: string, signal: AbortSignal): Promise<DataplaneView | undefined> {
  try { return await getJson<DataplaneView>(base, '/v1/dataplane', signal) } catch (error) {
    if (error instanceof StatusFetchError && / answered 404$/.test(error.message)) return undefined
    throw error
  }
}

/** The dataplane table: where each anycast prefix's packets go, and whether the interface holds it. */
export function dataplaneLines (view: DataplaneView, name: (id: string | undefined) => string): string[] {
  const state = view.lastError !== undefined ? `does not match (${view.lastError})` : view.matches ? 'matches the table' : 'does not match the table'
  const lines = [`dataplane ${view.kind}: interface ${state}; ${view.reconciles} reconciles, ${view.repairs} repairs, ${view.opsApplied} operations`]
  const actualPeer = (publicKey: string | undefined): string[] => view.actual?.peers.find((peer) => peer.publicKey === publicKey)?.allowedIps ?? []
  lines.push(table(['ANYCAST PREFIX', 'SERVICE', 'TO', 'PEER', 'ON INTERFACE'], view.routes.map((route) => {
    const installed = route.via === 'local'
      ? (view.actual?.localAddresses.includes(route.prefix) ?? false)
      : route.via === 'peer' ? actualPeer(route.publicKey).includes(route.prefix) : true
    return [
      route.prefix, route.service, route.via === 'local' ? 'local (loopback)' : route.via === 'peer' ? 'peer' : `nowhere${route.reason === undefined ? '' : ` (${route.reason})`}`,
      route.via === 'peer' ? `${name(route.nextHop)}${route.nextHop === route.origin ? '' : ` (relay to ${name(route.origin)})`}` : '-',
      installed ? 'yes' : 'no'
    ]
  })))
  return lines
}

function expiresIn (lease: LeaseView, nowMs: number): string {
  const seconds = Math.round((lease.expiresAtMs - nowMs) / 1000)
  return lease.live ? `${seconds} s` : 'expired'
}

export function parseApiUrl (text: string): string {
  let url: URL
  try { url = new URL(text) } catch { throw new ConfigError('--api', '', `not a URL: ${JSON.stringify(text)}`) }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('--api', '', `must be an http(s) URL, got ${JSON.stringify(text)}`)
  return url.href
}

export function table (headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)))
  const line = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()
  return [line(headers), ...rows.map(line)].join('\n')
}

function shortId (peerId: string): string {
  return peerId.length > 16 ? `${peerId.slice(0, 8)}…${peerId.slice(-6)}` : peerId
}

export async function runStatusCommand (options: { api: string, json: boolean, write: (text: string) => void }): Promise<number> {
  const base = parseApiUrl(options.api)
  const signal = AbortSignal.timeout(5000)
  const [status, peers, members, routes, health, leases, dataplane] = await Promise.all([
    getJson<NodeStatus>(base, '/v1/status', signal),
    getJson<{ peers: PeerSummary[] }>(base, '/v1/peers', signal),
    getJson<{ members: MemberSummary[] }>(base, '/v1/members', signal),
    getJson<{ routes: RouteEntry[] }>(base, '/v1/routes', signal),
    getJson<{ services: ServiceHealthView[], origins: OriginHealthView[] }>(base, '/v1/health', signal),
    getLeases(base, signal),
    getDataplane(base, signal)
  ])
  if (options.json) {
    options.write(JSON.stringify({ status, peers: peers.peers, members: members.members, routes: routes.routes, health, ...(leases === undefined ? {} : { leases }), ...(dataplane === undefined ? {} : { dataplane }) }, null, 2))
    return 0
  }
  const names = new Map(members.members.map((member) => [member.peerId, member.name]))
  options.write(`node ${status.name} (${status.peerId}) network ${status.networkId}, up ${Math.round(status.uptimeMs / 1000)} s`)
  options.write(`sessions ${status.sessions.established}/${status.sessions.total} established, ${status.members} live members, ${status.connectedPeers} connected peers\n`)
  options.write(table(['PEER', 'NAME', 'STATE', 'RTT ms', 'FAILURES', 'LAST ERROR'], peers.peers.map((peer) => [
    shortId(peer.peerId), names.get(peer.peerId) ?? '-', peer.state, peer.rttMs === undefined ? '-' : peer.rttMs.toFixed(1), String(peer.failures), peer.lastError ?? ''
  ])))
  options.write('')
  options.write(table(['MEMBER', 'PEER', 'LOCATION', 'LAST SEEN', 'SESSIONS'], members.members.map((member) => [
    member.name, shortId(member.peerId),
    member.location === undefined ? '-' : `${member.location.lat.toFixed(2)},${member.location.lon.toFixed(2)}${member.location.region === undefined ? '' : ` ${member.location.region}`}`,
    `${(member.ageMs / 1000).toFixed(1)} s ago${member.stale ? ' (stale)' : ''}`, String(member.established)
  ])))
  const name = (id: string | undefined): string => id === undefined ? '-' : id === status.peerId ? `${status.name} (self)` : names.get(id) ?? shortId(id)
  options.write('')
  options.write(table(['PREFIX', 'SERVICE', 'ORIGIN', 'NEXT HOP', 'COST ms', 'WHY', 'CANDIDATES'], routes.routes.map((route) => [
    route.prefix, route.service, name(route.origin), name(route.nextHop), route.costMs === undefined ? '-' : route.costMs.toFixed(1),
    route.relaying === undefined ? route.reason : `${route.reason} (${route.relaying === 'open' ? 'relaying' : 'relay pending'})`,
    route.candidates.map((candidate) => `${name(candidate.origin)}:${candidate.attributes.health}${candidate.path === undefined ? ':unreachable' : ''}`).join(' ')
  ])))
  if (health.services.length > 0) {
    options.write('')
    options.write(table(['LOCAL SERVICE', 'PREFIX', 'VERDICT', 'ANNOUNCER', 'LAST ERROR'], health.services.map((service) => [
      service.service, service.prefix, `${service.verdict}${service.adminDown ? ' (marked down)' : ''}`, service.announcer, service.lastError ?? ''
    ])))
  }
  if (leases !== undefined) {
    options.write('')
    options.write(`overlay address ${leases.unicast ?? '(none bound yet)'}`)
    options.write(table(['ADDRESS', 'KIND', 'HOLDER', 'SERVICE', 'EXPIRES IN', 'STATE'], leases.leases.map((lease) => [
      lease.address, lease.kind, name(lease.holder), lease.service ?? '-', expiresIn(lease, leases.nowMs), lease.state ?? '-'
    ])))
  }
  if (dataplane !== undefined) {
    options.write('')
    for (const line of dataplaneLines(dataplane, name)) options.write(line)
  }
  if (health.origins.length > 0) {
    options.write('')
    options.write(table(['ORIGIN PROBE', 'VERDICT', 'RTT ms', 'EVERY ms', 'LAST ERROR'], health.origins.map((origin) => [
      name(origin.origin), origin.verdict, origin.rttMs === undefined ? '-' : origin.rttMs.toFixed(1), String(origin.intervalMs), origin.lastError ?? ''
    ])))
  }
  return 0
}
