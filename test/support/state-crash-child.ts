// Child process of the crash test (test/runtime/store-crash.test.ts): writes signed ops through
// the state persistence into a LevelDB directory and prints `acked <i>` once op i is durable, in
// bursts of concurrent writes so group commit is exercised, until it is SIGKILLed (or has written
// MAX_OPS). Usage: node --import tsx state-crash-child.ts <directory> <round>
import { LevelStore } from '../../src/runtime/level-store.ts'
import { createStatePersistence } from '../../src/runtime/state-persistence.ts'
import { HlcClock, StateStore, putOp, signStateOp } from '../../src/protocols/state-crdt.ts'
import { CRASH_SIGNER_SEED, CRASH_WRITER, crashKey, createStateSigners } from './state-fixtures.ts'

const MAX_OPS = 20_000
const BURST = 4

async function main (directory: string, round: number): Promise<void> {
  const signers = createStateSigners(CRASH_SIGNER_SEED)
  const signer = signers.signer(CRASH_WRITER)
  const store = new LevelStore({ directory })
  await store.open()
  const clock = new HlcClock(CRASH_WRITER, () => Date.now())
  const state = new StateStore({ verifier: signers.directory, clock })
  const persistence = createStatePersistence({ store, state })
  const report = await persistence.start()
  process.stdout.write(`ready ${report.loaded}\n`)
  for (let index = 0; index < MAX_OPS; index += BURST) {
    const burst = Array.from({ length: BURST }, async (_, offset) => {
      const i = index + offset
      const op = signStateOp(putOp(clock, 'settings', crashKey(round, i), { round, i, pad: 'x'.repeat(i % 200) }), signer)
      await persistence.apply(op)
      process.stdout.write(`acked ${i}\n`)
    })
    await Promise.all(burst)
  }
  process.stdout.write('done\n')
  await persistence.stop()
  await store.close()
}

const [directory, round] = process.argv.slice(2)
if (directory === undefined || round === undefined) {
  process.stderr.write('usage: state-crash-child.ts <directory> <round>\n')
  process.exit(2)
}
await main(directory, Number(round))
