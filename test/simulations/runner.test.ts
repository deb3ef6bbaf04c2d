// The scenario runner end to end on the simulated overlay: the CI scenario converges within its
// targets with every check passing, runs are reproducible from their seed (also in worker threads),
// and a broken expectation or an injected fault fails a check and prints how to reproduce it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { main } from '../../src/runtime/cli.ts'
import { loadScenario, parseScenario, type Scenario } from '../../simulations/scenario.ts'
import { runScenario, type RunResult } from '../../simulations/runner.ts'
import { runInWorkers } from '../../simulations/sim-workers.ts'
import { MINI_SCENARIO, miniScenario } from '../support/mini-scenario.ts'

const miniValue = MINI_SCENARIO
const mini = miniScenario

function assertConverged (run: RunResult): void {
  for (const event of run.convergence.events) {
    assert.ok(event.convergedMs !== null, `${event.event} of ${event.node} on ${event.prefix} never converged: ${event.laggards?.join(', ')}`)
  }
}

test('runner: small-failover converges within 2 s (service down) and 3 s (crash) and passes every check, seeds 1 and 2', async () => {
  const scenario = loadScenario('simulations/small-failover.json')
  for (const seed of [1, 2]) {
    const run = await runScenario(scenario, seed)
    assertConverged(run)
    const { serviceDown, nodeCrash } = run.convergence.byType
    assert.is(serviceDown.samples, 1)
    assert.is(nodeCrash.samples, 1)
    assert.ok(serviceDown.maxMs! > 0 && serviceDown.maxMs! <= 2000, `service down converged in ${serviceDown.maxMs} ms`)
    assert.ok(nodeCrash.maxMs! > 0 && nodeCrash.maxMs! <= 3000, `crash converged in ${nodeCrash.maxMs} ms`)
    for (const [name, check] of Object.entries(run.checks)) assert.ok(check.passed, `${name}: ${check.examples.join('; ')}`)
    assert.ok(run.optimality.share! >= 0.99, `optimality ${run.optimality.share}`)
    assert.equal(run.optimality.instants, [10_000, 34_000])
    assert.ok(run.gossip.bytesPerNodePerSec > 0 && run.gossip.messagesPerNodePerSec > 0)
    assert.is(run.simSeconds, 34)
    assert.ok(run.passed)
  }
})

test('runner: the same seed gives the same trace hash and figures, in this thread and in a worker; another seed differs, seed 5', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-runner-'))
  try {
    const file = join(dir, 'mini.json')
    writeFileSync(file, JSON.stringify(miniValue))
    const first = await runScenario(mini(), 5)
    const second = await runScenario(mini(), 5)
    const [inWorker] = await runInWorkers(file, [5], 1, () => {})
    assertConverged(first)
    assert.is(first.traceHash, second.traceHash)
    assert.is(inWorker!.traceHash, first.traceHash)
    assert.equal(second.convergence, first.convergence)
    assert.equal(inWorker!.convergence, first.convergence)
    const other = await runScenario(mini(), 6)
    assert.is.not(other.traceHash, first.traceHash)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('runner: a broken expectation fails its check, exits 3 (liveness) and prints the seed first and a reproduce line, seed 3', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-runner-'))
  try {
    const file = join(dir, 'impossible.json')
    const out = join(dir, 'out.json')
    writeFileSync(file, JSON.stringify({ ...miniValue, name: 'impossible', expect: { ...miniValue.expect, convergenceP99Ms: { serviceDown: 1 } } }))
    const lines: string[] = []
    const code = await main(['node', 'form-anycast', 'sim', file, '--seed', '3', '--workers', '0', '--json', out], { out: (line) => lines.push(line), err: (line) => lines.push(line) })
    assert.is(code, 3)
    assert.is(lines[1], 'seed 3', lines.join('\n'))
    assert.ok(lines.some((line) => /^check convergenceWithinTarget FAILED: 1 violation\(s\), e\.g\. serviceDown of fra-0 at t=3000 .* > 1 ms$/.test(line)), lines.join('\n'))
    assert.is(lines[lines.length - 1], `reproduce: form-anycast sim ${file} --seed 3`)
    const result = JSON.parse(readFileSync(out, 'utf8')) as RunResult
    assert.equal(Object.keys(result).slice(0, 7), ['scenario', 'file', 'seed', 'nodes', 'simSeconds', 'wallSeconds', 'traceHash'])
    assert.is(result.checks.convergenceWithinTarget.passed, false)
    assert.is(result.checks.routeLoops.passed, true)
    assert.is(result.passed, false)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('runner: an origin that comes back behind the runner\'s back is caught routing after convergence, seed 4', async () => {
  const lines: string[] = []
  const run = await runScenario(mini(), 4, {
    log: (line) => lines.push(line),
    // The world quietly restores fra-0's api 2 s after it failed; the runner still counts it failed.
    inject: (world, atMs) => { if (atMs === 3000) world.clock.setTimeout(() => world.downServices.delete('fra-0/api'), 2000) }
  })
  const check = run.checks.failedOriginAfterConvergence
  assert.is(check.passed, false)
  assert.ok(check.violations > 0)
  assert.match(check.examples[0]!, /routes 10\.42\.255\.1\/32 to fra-0, whose failure had converged/)
  assert.is(lines[0], 'seed 4')
  assert.is(lines[lines.length - 1], 'reproduce: form-anycast sim mini.json --seed 4')
})

test('runner: --seeds aggregates runs from --seed on, with per-type percentiles', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'form-anycast-runner-'))
  try {
    const file = join(dir, 'mini.json')
    const out = join(dir, 'out.json')
    writeFileSync(file, JSON.stringify(miniValue))
    const lines: string[] = []
    const code = await main(['node', 'form-anycast', 'sim', file, '--seed', '7', '--seeds', '2', '--json', out], { out: (line) => lines.push(line), err: (line) => lines.push(line) })
    const result = JSON.parse(readFileSync(out, 'utf8')) as { runs: RunResult[], summary: { convergence: { samples: number, byType: Record<string, { samples: number }> }, checksPassed: boolean }, complete: boolean }
    assert.is(code, 0, lines.join('\n'))
    assert.is(result.complete, true)
    assert.equal(result.runs.map((run) => run.seed), [7, 8])
    assert.is(result.summary.checksPassed, true)
    assert.is(result.summary.convergence.samples, 4)
    assert.is(result.summary.convergence.byType.serviceDown!.samples, 2)
    assert.is(result.summary.convergence.byType.nodeCrash!.samples, 2)
    assert.ok(lines.includes('all checks passed'), lines.join('\n'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
