// Runs every benchmark in bench/ as its own process (so one's heap does not skew another's) and
// prints their figures. Usage: npm run bench [-- name ...]
import { spawnSync } from 'node:child_process'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'

const BENCHES: Array<{ name: string, file: string, nodeArgs?: string[] }> = [
  { name: 'clock', file: 'clock.ts' },
  { name: 'actor-memory', file: 'actor-memory.ts', nodeArgs: ['--expose-gc'] },
  { name: 'sim-overlay', file: 'sim-overlay.ts' },
  { name: 'dns', file: 'dns.ts' },
  // The simulator's CLI runs its worlds in workers with a 192 MB young generation (sim-workers.ts).
  { name: 'sim', file: 'sim.ts', nodeArgs: ['--max-semi-space-size=64'] },
  { name: 'inspect', file: 'inspect.ts' },
  { name: 'inspect-cost', file: 'inspect-cost.ts' }
]

const wanted = process.argv.slice(2)
const selected = wanted.length === 0 ? BENCHES : BENCHES.filter((bench) => wanted.includes(bench.name))
if (selected.length === 0) {
  console.error(`unknown bench ${wanted.join(', ')}; known: ${BENCHES.map((bench) => bench.name).join(', ')}`)
  process.exit(2)
}
console.log(`machine: ${cpus()[0]?.model ?? 'unknown cpu'} × ${cpus().length}, node ${process.version}`)
let failures = 0
for (const bench of selected) {
  const file = fileURLToPath(new URL(bench.file, import.meta.url))
  console.log(`\n== ${bench.name}`)
  const result = spawnSync(process.execPath, [...(bench.nodeArgs ?? []), '--import', 'tsx', file], { stdio: 'inherit', timeout: 20 * 60_000 })
  if (result.status !== 0) { failures++; console.log(`${bench.name} failed (${result.signal ?? `exit ${result.status}`})`) }
}
process.exit(failures === 0 ? 0 : 1)
