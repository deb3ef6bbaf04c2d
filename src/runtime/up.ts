// `form-anycast up`: a local demo network of N real node processes on loopback, each a
// `form-anycast node` with its own data directory, all bootstrapped to each other. Keys are made
// first so every node's peer id, and so every bootstrap address, is known before any process starts.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createNodeKeyFile, loadNodeKey, peerIdFromKey } from './node-key.ts'
import type { NodeLocation } from './config.ts'

/** Real cities on several continents, so geography in the demo means something. */
export const DEMO_SITES: ReadonlyArray<{ name: string, location: NodeLocation }> = [
  { name: 'fra', location: { lat: 50.11, lon: 8.68, region: 'eu-central', city: 'Frankfurt' } },
  { name: 'nyc', location: { lat: 40.71, lon: -74.01, region: 'us-east', city: 'New York' } },
  { name: 'sin', location: { lat: 1.35, lon: 103.82, region: 'ap-southeast', city: 'Singapore' } },
  { name: 'sao', location: { lat: -23.55, lon: -46.63, region: 'sa-east', city: 'São Paulo' } },
  { name: 'syd', location: { lat: -33.87, lon: 151.21, region: 'ap-southeast', city: 'Sydney' } },
  { name: 'sfo', location: { lat: 37.77, lon: -122.42, region: 'us-west', city: 'San Francisco' } },
  { name: 'lon', location: { lat: 51.51, lon: -0.13, region: 'eu-west', city: 'London' } },
  { name: 'tyo', location: { lat: 35.68, lon: 139.69, region: 'ap-northeast', city: 'Tokyo' } },
  { name: 'jnb', location: { lat: -26.2, lon: 28.05, region: 'af-south', city: 'Johannesburg' } },
  { name: 'bom', location: { lat: 19.08, lon: 72.88, region: 'ap-south', city: 'Mumbai' } }
]

export const MAX_UP_NODES = 64

/** The demo service: `api` at one anycast address, served by three of every five nodes. */
export const DEMO_SERVICE = { name: 'api', prefix: '10.42.255.1/32' }
export function servesDemo (index: number): boolean { return index % 5 < 3 }

export interface UpOptions {
  nodes: number
  dataDir: string
  networkId: string
  logLevel: string
  /** Node i's status API goes on this port + i when free (0: any free port). */
  apiPortBase: number
  write: (line: string) => void
}

interface PlannedNode {
  name: string
  peerId: string
  p2pPort: number
  apiPort: number
  demoPort: number | undefined
  configPath: string
  location: NodeLocation
}

/** The wanted port if it is free on 127.0.0.1, else any free port (0 asks for any). */
async function freePort (wanted = 0): Promise<number> {
  return await new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (wanted !== 0 && error.code === 'EADDRINUSE') resolvePort(freePort(0))
      else reject(error)
    })
    server.listen(wanted, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolvePort(port))
    })
  })
}

function siteFor (index: number): { name: string, location: NodeLocation } {
  const site = DEMO_SITES[index % DEMO_SITES.length]!
  const round = Math.floor(index / DEMO_SITES.length)
  return round === 0 ? site : { name: `${site.name}-${round + 1}`, location: site.location }
}

async function planNetwork (options: UpOptions): Promise<PlannedNode[]> {
  const planned: PlannedNode[] = []
  for (let index = 0; index < options.nodes; index++) {
    const site = siteFor(index)
    const dataDir = join(options.dataDir, site.name)
    mkdirSync(dataDir, { recursive: true })
    const key = (await loadNodeKey(dataDir)) ?? await createNodeKeyFile(dataDir)
    planned.push({ name: site.name, peerId: peerIdFromKey(key), p2pPort: await freePort(), apiPort: await freePort(options.apiPortBase === 0 ? 0 : options.apiPortBase + index), demoPort: servesDemo(index) ? await freePort() : undefined, configPath: join(dataDir, 'node.json'), location: site.location })
  }
  for (const node of planned) {
    const config = {
      name: node.name,
      networkId: options.networkId,
      dataDir: join(options.dataDir, node.name),
      listen: [`/ip4/127.0.0.1/tcp/${node.p2pPort}`],
      bootstrap: planned.filter((other) => other !== node).map((other) => `/ip4/127.0.0.1/tcp/${other.p2pPort}/p2p/${other.peerId}`),
      statusApi: { host: '127.0.0.1', port: node.apiPort },
      location: node.location,
      logLevel: options.logLevel,
      ...(node.demoPort === undefined
        ? {}
        : {
            demoServicePort: node.demoPort,
            services: [{ ...DEMO_SERVICE, check: { kind: 'http', url: `http://127.0.0.1:${node.demoPort}/health` } }]
          })
    }
    writeFileSync(node.configPath, JSON.stringify(config, null, 2) + '\n')
  }
  return planned
}

const BIN = fileURLToPath(new URL('../../bin/form-anycast.js', import.meta.url))
const READY = /^node (\S+) ready: status API (\S+) peer (\S+) pid (\d+)$/

/** Starts the network and resolves with the exit code once it has been shut down. */
export async function runUp (options: UpOptions): Promise<number> {
  const dataDir = resolve(options.dataDir)
  const planned = await planNetwork({ ...options, dataDir })
  options.write(`form-anycast up: starting ${planned.length} nodes on 127.0.0.1 (network "${options.networkId}", data in ${dataDir})`)
  const children = new Map<string, ChildProcess>()
  const ready = new Map<string, string>()
  let shuttingDown = false
  let resolveDone!: (code: number) => void
  const done = new Promise<number>((resolveExit) => { resolveDone = resolveExit })

  const checkAllExited = (): void => {
    if ([...children.values()].every((child) => child.exitCode !== null || child.signalCode !== null)) resolveDone(shuttingDown ? 0 : 1)
  }
  for (const node of planned) {
    const child = spawn(process.execPath, [BIN, 'node', '--config', node.configPath], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.set(node.name, child)
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = READY.exec(line)
      if (match !== null) {
        ready.set(node.name, match[2]!)
        options.write(`node ${node.name}: status API ${match[2]} peer ${match[3]} pid ${match[4]}`)
        if (ready.size === planned.length) {
          const origins = planned.filter((candidate) => candidate.demoPort !== undefined).map((candidate) => candidate.name)
          options.write(`all ${planned.length} nodes ready; service ${DEMO_SERVICE.name} at ${DEMO_SERVICE.prefix} served by ${origins.join(', ')}`)
          options.write(`try: form-anycast status --api ${ready.get(planned[0]!.name)}`)
          options.write(`     curl -X POST ${ready.get(origins[0]!)}/v1/services/${DEMO_SERVICE.name}/down   (then /up; Ctrl-C stops the network)`)
        }
      } else {
        options.write(`[${node.name}] ${line}`)
      }
    })
    child.on('exit', (code, signal) => {
      if (!shuttingDown) options.write(`node ${node.name} exited (${signal ?? `code ${code}`})`)
      checkAllExited()
    })
  }

  const shutdown = (signal: NodeJS.Signals): void => {
    if (shuttingDown) return
    shuttingDown = true
    options.write(`form-anycast up: stopping (${signal})`)
    for (const child of children.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    // A node that does not drain within 15 s is killed: shutting down must never hang.
    setTimeout(() => { for (const child of children.values()) child.kill('SIGKILL') }, 15_000).unref()
    checkAllExited()
  }
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  return await done
}
