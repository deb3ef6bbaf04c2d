// A tiny HTTP service for demo networks: `/health` answers 200 and `/` says which node served the
// request, so a failover can be watched with curl. It stands for the real service an operator runs
// beside the node agent; the agent only probes it.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface DemoService {
  readonly port: number
  stop(): Promise<void>
}

export async function startDemoService (options: { name: string, host: string, port: number }): Promise<DemoService> {
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname
    response.writeHead(200, { 'content-type': 'text/plain' })
    response.end(path === '/health' ? 'ok\n' : `served by ${options.name}\n`)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => resolve())
  })
  return {
    port: (server.address() as AddressInfo).port,
    stop: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
