// Heartbeat: one per node. Publishes this node's heartbeat on the health topic at a jittered
// interval, so every member learns who is alive without a central registry (as Serf/memberlist
// gossip do). The publish itself is an invoked effect through the `publish` port.
import { assign, fromPromise, setup } from 'xstate'
import type { Random } from '../runtime/ports.ts'
import type { Heartbeat } from '../protocols/heartbeat-codec.ts'

export interface HeartbeatInput {
  /** The current period, asked afresh for each wait: it grows with the membership (membership.ts). */
  intervalMs: () => number
  random: Random
  /** Builds the current heartbeat; the sequence number is filled in by the actor. */
  describe: () => Omit<Heartbeat, 'seq'>
  publish: (heartbeat: Heartbeat) => Promise<void>
}

export interface HeartbeatContext extends HeartbeatInput {
  seq: number
  failures: number
}

export const heartbeatMachine = setup({
  types: { context: {} as HeartbeatContext, input: {} as HeartbeatInput },
  actors: {
    publishHeartbeat: fromPromise<void, { publish: HeartbeatInput['publish'], heartbeat: Heartbeat }>(
      async ({ input }) => { await input.publish(input.heartbeat) }
    )
  },
  delays: {
    // ±10 % so nodes started together do not publish in lockstep.
    heartbeatInterval: ({ context }) => Math.round(context.intervalMs() * (0.9 + 0.2 * context.random.next()))
  },
  actions: {
    nextSeq: assign({ seq: ({ context }) => context.seq + 1 }),
    countFailure: assign({ failures: ({ context }) => context.failures + 1 })
  }
}).createMachine({
  id: 'heartbeat',
  context: ({ input }) => ({ ...input, seq: 0, failures: 0 }),
  initial: 'publishing',
  states: {
    publishing: {
      entry: 'nextSeq',
      invoke: {
        src: 'publishHeartbeat',
        input: ({ context }) => ({ publish: context.publish, heartbeat: { ...context.describe(), seq: context.seq } }),
        onDone: 'waiting',
        onError: { target: 'waiting', actions: 'countFailure' }
      }
    },
    waiting: {
      after: { heartbeatInterval: 'publishing' }
    }
  }
})
