// A real crash: a child process writes ops through the state persistence into LevelDB and prints
// `acked <i>` after each acknowledged write; it is SIGKILLed at a random moment (after a random
// number of acknowledgements, or a random delay); reopening the directory must hold every op it
// acknowledged, in every round so far. Several rounds share one directory, so each also checks that
// a store recovered from a kill can be written and killed again. Every wait is bounded.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createRandom } from '../../src/runtime/random.ts'
import { LevelStore } from '../../src/runtime/level-store.ts'
import { createStatePersistence } from '../../src/runtime/state-persistence.ts'
import { StateStore } from '../../src/protocols/state-crdt.ts'
import { CRASH_SIGNER_SEED, crashKey, createStateSigners } from '../support/state-fixtures.ts'

const CHILD = fileURLToPath(new URL('../support/state-crash-child.ts', import.meta.url))
const SEED = 20_260_611
const ROUNDS = 4
const START_TIMEOUT_MS = 30_000
const ACK_TIMEOUT_MS = 30_000

interface RoundResult { acked: Set<number>, killedAfter: string, loadedAtStart: number }

async function crashRound (directory: string, round: number, kill: { afterAcks: number } | { afterMs: number }): Promise<RoundResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, directory, String(round)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const acked = new Set<number>()
  let loadedAtStart = -1
  const stderr: string[] = []
  createInterface({ input: child.stderr }).on('line', (line) => stderr.push(line))
  const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? `code ${code}`)))
  const killed = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`round ${round}: no kill point within bounds; acked ${acked.size}; stderr:\n${stderr.join('\n')}`)) }, START_TIMEOUT_MS + ACK_TIMEOUT_MS)
    const killNow = (why: string): void => { clearTimeout(timer); child.kill('SIGKILL'); resolve(why) }
    createInterface({ input: child.stdout }).on('line', (line) => {
      const ready = /^ready (\d+)$/.exec(line)
      if (ready !== null) {
        loadedAtStart = Number(ready[1])
        if ('afterMs' in kill) setTimeout(() => killNow(`${kill.afterMs} ms after ready`), kill.afterMs)
        return
      }
      const ack = /^acked (\d+)$/.exec(line)
      if (ack === null) return
      acked.add(Number(ack[1]))
      if ('afterAcks' in kill && acked.size === kill.afterAcks) killNow(`after ${kill.afterAcks} acks`)
    })
    child.on('exit', () => { clearTimeout(timer); resolve('exited on its own') })
  })
  const killedAfter = await killed
  assert.is(await exited, 'SIGKILL', `round ${round}: the child must die by SIGKILL; stderr:\n${stderr.join('\n')}`)
  return { acked, killedAfter, loadedAtStart }
}

test(`state-persistence crash: SIGKILL at a random moment loses no acknowledged op, ${ROUNDS} rounds, seed ${SEED}`, async () => {
  console.log(`seed ${SEED}`)
  const random = createRandom(SEED)
  const directory = await mkdtemp(join(tmpdir(), 'form-anycast-crash-'))
  const ackedByRound: Array<Set<number>> = []
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const kill = round % 2 === 0 ? { afterAcks: 1 + random.int(400) } : { afterMs: random.int(400) }
      const result = await crashRound(directory, round, kill)
      ackedByRound.push(result.acked)
      const expectedAtStart = ackedByRound.slice(0, -1).reduce((sum, acked) => sum + acked.size, 0)
      assert.ok(result.loadedAtStart >= expectedAtStart, `round ${round}: the child loaded ${result.loadedAtStart} ops, fewer than the ${expectedAtStart} acknowledged before`)

      const store = new LevelStore({ directory })
      await store.open()
      const signers = createStateSigners(CRASH_SIGNER_SEED)
      const state = new StateStore({ verifier: signers.directory })
      const persistence = createStatePersistence({ store, state })
      const report = await persistence.start()
      await persistence.stop()
      await store.close()
      assert.equal(report.skipped, [], `round ${round}: unreadable records`)
      ackedByRound.forEach((acked, r) => {
        for (const i of acked) {
          const value = state.get('settings', crashKey(r, i))
          if (value?.i !== i || value.round !== r) {
            assert.unreachable(`seed ${SEED}: round ${round} (killed ${result.killedAfter}) lost acknowledged op ${crashKey(r, i)}`)
          }
        }
      })
      console.log(`round ${round}: killed ${result.killedAfter}; ${result.acked.size} acknowledged, ${report.loaded} on disk in all`)
    }
    assert.ok(ackedByRound.some((acked) => acked.size > 0), 'no round acknowledged anything: the test proved nothing')
  } finally {
    await rm(directory, { recursive: true, force: true })
  }
})

test.run()
