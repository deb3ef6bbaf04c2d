// The Dataplane port on a WireGuard interface, driven through `wg` and `ip` (wireguard-tools,
// iproute2). The kernel module is used when `ip link add … type wireguard` works; otherwise this
// adapter runs `wireguard-go -f <interface>` as its own child, so the interface lives and dies
// with the node. It manages: the interface (its private key, listen port, MTU, its overlay /32 and
// a route for the overlay through it), its peers, and the anycast addresses inside the anycast pool
// bound on loopback. stop() removes all of it.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync, createPrivateKey, createPublicKey } from 'node:crypto'
import { chmod, readFile, writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import type { DataplaneOp, DataplanePeer, DataplaneState } from '../protocols/dataplane-table.ts'
import { parseAddress, parsePrefix } from '../protocols/cidr.ts'
import type { Dataplane, Logger } from './ports.ts'
import { DataplaneError } from './dataplane-errors.ts'

export { DataplaneError }

export const WIREGUARD_KEY_FILE = 'wireguard.key'
/** formnet's MTU: fits inside most tunnels and mobile links (FORMATION-FACTS.md). */
export const DEFAULT_WIREGUARD_MTU = 1280
/** Every `wg`/`ip` call is bounded. */
const COMMAND_TIMEOUT_MS = 5_000
/** How much of wireguard-go's output an error quotes (its tail). */
const USERSPACE_OUTPUT_KEPT = 600

/** wireguard-go needs a moment to create its UAPI socket; checked at most this many times. */
const USERSPACE_READY_POLLS = 50
const USERSPACE_POLL_MS = 100
/**
 * What wireguard-go logs (at LOG_LEVEL=verbose) once its UAPI socket listens. Readiness is read
 * from this line, never by asking with `wg`: a `wg` that connects between the socket's bind and
 * its listen is refused, takes the socket for a dead one and unlinks it, and wireguard-go then
 * exits with "Failed to listen on uapi socket: no such file or directory" (seen in the netns test
 * about once in 20 starts of five nodes on a loaded machine).
 */
const USERSPACE_READY_LINE = 'UAPI listener started'

/**
 * Reads wireguard-go's stdout chunk by chunk and says when USERSPACE_READY_LINE has gone by. The
 * end of the previous chunk goes first, so a line cut between two chunks still matches, and each
 * chunk is searched whole (the worker lines logged with it can be longer than any tail kept).
 */
export function uapiReadyWatcher (): (chunk: string) => boolean {
  let carried = ''
  return (chunk) => {
    const text = carried + chunk
    carried = text.slice(-USERSPACE_READY_LINE.length)
    return text.includes(USERSPACE_READY_LINE)
  }
}

const base64url = (text: string): string => Buffer.from(text, 'base64url').toString('base64')

/**
 * This node's WireGuard key (X25519, separate from its libp2p identity), kept in
 * <dataDir>/wireguard.key as `wg genkey` writes it. Created on first use, mode 0600.
 */
export async function loadOrCreateWireguardKey (dataDir: string): Promise<{ privateKeyFile: string, publicKey: string }> {
  const privateKeyFile = join(dataDir, WIREGUARD_KEY_FILE)
  let text: string | undefined
  try { text = (await readFile(privateKeyFile, 'utf8')).trim() } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new DataplaneError('key', `cannot read ${privateKeyFile}: ${(error as Error).message}`)
  }
  if (text === undefined) {
    const { privateKey } = generateKeyPairSync('x25519')
    text = base64url(privateKey.export({ format: 'jwk' }).d!)
    const temporary = `${privateKeyFile}.tmp`
    await writeFile(temporary, `${text}\n`, { mode: 0o600 })
    await rename(temporary, privateKeyFile)
  }
  const raw = Buffer.from(text, 'base64')
  if (raw.length !== 32) throw new DataplaneError('key', `${privateKeyFile} is not a WireGuard private key (32 bytes of base64)`)
  await chmod(privateKeyFile, 0o600)
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: raw.toString('base64url'), x: '' }, format: 'jwk' })
  const publicKey = base64url(createPublicKey(privateKey).export({ format: 'jwk' }).x!)
  return { privateKeyFile, publicKey }
}

export type CommandRunner = (command: string, args: readonly string[], options: { signal?: AbortSignal }) => Promise<string>

export const runCommand: CommandRunner = async (command, args, options) => await new Promise((resolve, reject) => {
  execFile(command, [...args], { timeout: COMMAND_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024, ...(options.signal === undefined ? {} : { signal: options.signal }) }, (error, stdout, stderr) => {
    if (error !== null) reject(new DataplaneError(command, `${command} ${args.join(' ')}: ${stderr.trim() || error.message}`, { cause: error }))
    else resolve(stdout)
  })
})

export interface WireguardDataplaneInit {
  interface: string
  listenPort: number
  privateKeyFile: string
  /** Routed through the interface (anycast included: the pool lies inside it). */
  overlayCidr: string
  /** Loopback addresses inside this pool are the anycast addresses this dataplane manages. */
  anycastCidr: string
  mtu?: number
  logger: Logger
  run?: CommandRunner
  /**
   * Masquerade what leaves through the interface behind this node's overlay address (one iptables
   * nat rule, tagged with a comment): needed where this node forwards for others — an ingress for
   * clients outside the overlay, or a relay, since WireGuard accepts a packet only from an address
   * in the sending peer's AllowedIPs. Forwarding itself (net.ipv4.ip_forward) is the operator's.
   */
  masquerade?: boolean
  /** Prepended to every command, e.g. ['ip', 'netns', 'exec', 'ns1'] (tests, and nodes in a namespace). */
  commandPrefix?: string[]
}

function ipv4Value (address: string): number {
  const bytes = parseAddress(address).bytes
  return ((bytes[0]! << 24) >>> 0) + (bytes[1]! << 16) + (bytes[2]! << 8) + bytes[3]!
}

function inside (address: string, cidr: string): boolean {
  const prefix = parsePrefix(cidr)
  if (prefix.family !== 4 || address.includes(':')) return false
  const mask = prefix.length === 0 ? 0 : (~0 << (32 - prefix.length)) >>> 0
  return ((ipv4Value(address) & mask) >>> 0) === ((ipv4Value(prefix.address) & mask) >>> 0)
}

/** `wg show <if> dump`: an interface line, then one line per peer (wg(8), "dump"). */
export function parseWgDump (text: string): DataplanePeer[] {
  const lines = text.trim().split('\n').slice(1).filter((line) => line.length > 0)
  return lines.map((line) => {
    const [publicKey, , endpoint, allowed, , , , keepalive] = line.split('\t')
    if (publicKey === undefined || allowed === undefined || keepalive === undefined) throw new DataplaneError('read', `unexpected wg dump line: ${JSON.stringify(line)}`)
    return {
      publicKey,
      ...(endpoint === undefined || endpoint === '(none)' ? {} : { endpoint }),
      allowedIps: allowed === '(none)' ? [] : allowed.split(',').sort(),
      keepaliveS: keepalive === 'off' ? 0 : Number(keepalive)
    }
  }).sort((a, b) => a.publicKey < b.publicKey ? -1 : 1)
}

interface IpAddrJson { addr_info?: Array<{ family?: string, local?: string, prefixlen?: number }> }

function parseIpAddrJson (text: string): string[] {
  const links = JSON.parse(text === '' ? '[]' : text) as IpAddrJson[]
  return links.flatMap((link) => (link.addr_info ?? []).filter((info) => info.family === 'inet' && info.local !== undefined).map((info) => `${info.local!}/${info.prefixlen ?? 32}`))
}

export class WireguardDataplane implements Dataplane {
  readonly kind = 'wireguard'
  private readonly run: CommandRunner
  private userspace: ChildProcess | undefined
  private created = false
  private started = false

  constructor (private readonly init: WireguardDataplaneInit) {
    const run = init.run ?? runCommand
    const prefix = init.commandPrefix ?? []
    this.run = prefix.length === 0 ? run : async (command, args, options) => await run(prefix[0]!, [...prefix.slice(1), command, ...args], options)
  }

  private async wg (args: string[], signal?: AbortSignal): Promise<string> { return await this.run('wg', args, { ...(signal === undefined ? {} : { signal }) }) }
  private async ip (args: string[], signal?: AbortSignal): Promise<string> { return await this.run('ip', args, { ...(signal === undefined ? {} : { signal }) }) }

  async start (options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.started) return
    const { signal } = options
    const name = this.init.interface
    const exists = await this.ip(['link', 'show', 'dev', name], signal).then(() => true, () => false)
    if (!exists) {
      const kernel = await this.ip(['link', 'add', 'dev', name, 'type', 'wireguard'], signal).then(() => true, () => false)
      if (!kernel) await this.startUserspace(signal)
      this.created = true
    }
    await this.wg(['set', name, 'private-key', this.init.privateKeyFile, 'listen-port', String(this.init.listenPort)], signal)
    await this.ip(['link', 'set', 'dev', name, 'mtu', String(this.init.mtu ?? DEFAULT_WIREGUARD_MTU), 'up'], signal)
    await this.ip(['route', 'replace', this.init.overlayCidr, 'dev', name], signal)
    if (this.init.masquerade === true) {
      const present = await this.run('iptables', ['-t', 'nat', '-C', ...this.masqueradeRule()], { ...(signal === undefined ? {} : { signal }) }).then(() => true, () => false)
      if (!present) await this.run('iptables', ['-t', 'nat', '-A', ...this.masqueradeRule()], { ...(signal === undefined ? {} : { signal }) })
    }
    this.started = true
    this.init.logger.info('wireguard interface up', { interface: name, listenPort: this.init.listenPort, userspace: this.userspace !== undefined })
  }

  private masqueradeRule (): string[] {
    return ['POSTROUTING', '-o', this.init.interface, '-m', 'comment', '--comment', `form-anycast:${this.init.interface}`, '-j', 'MASQUERADE']
  }

  private async startUserspace (signal: AbortSignal | undefined): Promise<void> {
    const name = this.init.interface
    const prefix = this.init.commandPrefix ?? []
    const argv = [...prefix, 'wireguard-go', '-f', name]
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'verbose' } })
    let failure: Error | undefined
    child.on('error', (error) => { failure = error })
    // Its last words, for the error: wireguard-go logs why it gave up (TUN device, UAPI socket) to
    // stdout, and usage and warnings to stderr. Both are read all along, so neither pipe fills.
    let said = ''
    let ready = false
    const hear = (chunk: string): void => { said = (said + chunk).slice(-USERSPACE_OUTPUT_KEPT) }
    const lastWords = (): string => {
      const words = said.replace(/\s+/g, ' ').trim()
      return words === '' ? ' (it printed nothing)' : `: ${words}`
    }
    const readyIn = uapiReadyWatcher()
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      hear(chunk)
      if (!ready) ready = readyIn(chunk)
    })
    child.stderr?.setEncoding('utf8').on('data', hear)
    this.userspace = child
    for (let poll = 0; poll < USERSPACE_READY_POLLS; poll++) {
      if (failure !== undefined) throw new DataplaneError('start', `cannot run wireguard-go (no kernel WireGuard either): ${failure.message}`)
      if (child.exitCode !== null) {
        // Its output may still be draining: wait for the pipes to close, briefly.
        await Promise.race([new Promise((resolve) => child.once('close', resolve)), new Promise((resolve) => setTimeout(resolve, 200))])
        throw new DataplaneError('start', `wireguard-go exited with ${child.exitCode} creating ${name}${lastWords()}`)
      }
      if (ready) return
      signal?.throwIfAborted()
      await new Promise((resolve) => setTimeout(resolve, USERSPACE_POLL_MS))
    }
    child.kill()
    throw new DataplaneError('start', `wireguard-go did not bring ${name} up within ${USERSPACE_READY_POLLS * USERSPACE_POLL_MS} ms${lastWords()}`)
  }

  async stop (): Promise<void> {
    if (!this.started && this.userspace === undefined) return
    this.started = false
    try {
      for (const address of await this.localAddresses()) await this.ip(['addr', 'del', address, 'dev', 'lo']).catch(() => undefined)
    } catch { /* loopback unreadable: nothing of ours to remove */ }
    if (this.init.masquerade === true) {
      // Bounded: a rule added twice by hand is removed twice, and no more.
      for (let removed = 0; removed < 8; removed++) {
        if (!await this.run('iptables', ['-t', 'nat', '-D', ...this.masqueradeRule()], {}).then(() => true, () => false)) break
      }
    }
    if (this.created) await this.ip(['link', 'del', 'dev', this.init.interface]).catch(() => undefined)
    const child = this.userspace
    this.userspace = undefined
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2_000))])
    }
    this.init.logger.info('wireguard interface removed', { interface: this.init.interface })
  }

  private async localAddresses (signal?: AbortSignal): Promise<string[]> {
    const addresses = parseIpAddrJson(await this.ip(['-j', '-4', 'addr', 'show', 'dev', 'lo'], signal))
    return addresses.filter((address) => address.endsWith('/32') && inside(address.slice(0, -3), this.init.anycastCidr)).sort()
  }

  async read (options: { signal?: AbortSignal } = {}): Promise<DataplaneState> {
    const { signal } = options
    const [dump, addresses, local] = await Promise.all([
      this.wg(['show', this.init.interface, 'dump'], signal),
      this.ip(['-j', '-4', 'addr', 'show', 'dev', this.init.interface], signal),
      this.localAddresses(signal)
    ])
    return { interfaceAddresses: parseIpAddrJson(addresses).sort(), localAddresses: local, peers: parseWgDump(dump) }
  }

  async apply (ops: readonly DataplaneOp[], options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options
    const name = this.init.interface
    for (const op of ops) {
      switch (op.op) {
        case 'peer.remove': await this.wg(['set', name, 'peer', op.publicKey, 'remove'], signal); break
        case 'peer.set': await this.wg([
          'set', name, 'peer', op.peer.publicKey,
          ...(op.peer.endpoint === undefined ? [] : ['endpoint', op.peer.endpoint]),
          'persistent-keepalive', op.peer.keepaliveS === 0 ? 'off' : String(op.peer.keepaliveS),
          'allowed-ips', op.peer.allowedIps.join(',')
        ], signal); break
        case 'address.add': await this.ip(['addr', 'replace', op.address, 'dev', op.scope === 'local' ? 'lo' : name], signal); break
        case 'address.remove': await this.ip(['addr', 'del', op.address, 'dev', op.scope === 'local' ? 'lo' : name], signal); break
      }
    }
  }
}
