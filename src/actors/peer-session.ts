// Peer session: one per neighbour. The BGP finite state machine of RFC 4271 §8 carried over a
// framed overlay stream instead of TCP port 179:
//
//   idle ──start──▶ connect ──stream──▶ opened.openSent ──OPEN──▶ openConfirm ──KEEPALIVE──▶ established
//                     │  ▲                    │ any error, hold expiry, NOTIFICATION, stream closed
//                     ▼  │ retry (back-off)   ▼
//                    active ◀───────────── opened.closing (sends NOTIFICATION, then leaves)
//
// To avoid the connection collisions of RFC 4271 §6.8, only the side with the smaller node id
// dials; the other waits in `active` for the incoming stream. Every effect goes through ports:
// the stream through `transport`, time through the actor's clock, jitter through `random`.
import { assign, enqueueActions, fromCallback, fromPromise, setup } from 'xstate'
import type { Clock, FrameStream, PeerId, Random } from '../runtime/ports.ts'
import { backoffDelayMs, type BackoffPolicy } from '../protocols/backoff.ts'
import {
  decode, encode, NotificationCode, OpenErrorSubcode, SESSION_PROTOCOL_VERSION,
  type KeepaliveFrame, type NotificationFrame, type OpenFrame, type SessionFrame
} from '../protocols/session-codec.ts'

export interface PeerSessionConfig {
  /** Proposed hold time; the session uses the smaller of both sides' (RFC 4271 §4.2). */
  holdTimeMs: number
  /** Smallest hold time accepted from a peer; below it the OPEN is refused. */
  minHoldTimeMs: number
  /** How long to wait for the peer's OPEN and KEEPALIVE after the stream opens. */
  openTimeoutMs: number
  /** Reconnect back-off: exponential with jitter, reset once established. */
  backoff: BackoffPolicy
}

export const defaultPeerSessionConfig: PeerSessionConfig = {
  holdTimeMs: 3000,
  minHoldTimeMs: 300,
  openTimeoutMs: 5000,
  backoff: { minMs: 250, maxMs: 30_000, jitter: 0.25 }
}

/** What the session tells its host: when routes may flow, when they must be forgotten. */
export interface SessionListener {
  established(peer: PeerId): void
  /** The session left established: every route learned through it is now invalid. */
  down(peer: PeerId, reason: string): void
  update(peer: PeerId, payload: Uint8Array): void
}

/** The narrow port a session needs: open a session stream to its peer. */
export interface SessionTransport {
  openSession(peer: PeerId, signal: AbortSignal): Promise<FrameStream>
}

export interface PeerSessionInput {
  localNodeId: string
  peerId: PeerId
  networkId: string
  capabilities?: string[]
  /** Start connecting as soon as the actor starts (also after a supervisor restart). */
  autoStart?: boolean
  config: PeerSessionConfig
  transport: SessionTransport
  listener?: SessionListener
  clock: Clock
  random: Random
}

interface ReceivedKeepalive { sentAtMs: number, receivedAtMs: number }
interface PendingNotification { code: number, subcode: number, message: string, stop: boolean }

export interface PeerSessionContext extends PeerSessionInput {
  capabilities: string[]
  stream: FrameStream | undefined
  /** Consecutive failed attempts since the last established session; drives back-off. */
  failures: number
  holdTimeMs: number
  rttMs: number | undefined
  lastKeepalive: ReceivedKeepalive | undefined
  establishedAtMs: number | undefined
  lastError: string | undefined
  closing: PendingNotification | undefined
  framesIn: number
  framesOut: number
  invalidFrames: number
  remoteCapabilities: string[]
}

export type PeerSessionEvent =
  | { type: 'session.start' }
  | { type: 'session.stop' }
  | { type: 'session.incoming', stream: FrameStream }
  | { type: 'peer.connected' }
  | { type: 'frame.received', frame: SessionFrame }
  | { type: 'frame.invalid', reason: string }
  | { type: 'stream.closed', reason: string }
  /** Send an UPDATE (routes, reachability) if established; dropped otherwise. */
  | { type: 'session.send.update', payload: Uint8Array }

/** RFC 6298 §2 smoothing (alpha = 1/8) keeps one slow keepalive from swinging route costs. */
const RTT_SMOOTHING = 1 / 8

function sendFrame (context: PeerSessionContext, frame: SessionFrame): void {
  if (context.stream?.send(encode(frame)) === true) context.framesOut++
}

function keepaliveFrame (context: PeerSessionContext): KeepaliveFrame {
  const now = context.clock.now()
  const last = context.lastKeepalive
  return {
    type: 'keepalive',
    sentAtMs: now,
    echoSentAtMs: last?.sentAtMs ?? 0,
    echoHeldMs: last === undefined ? 0 : now - last.receivedAtMs
  }
}

/** Why an OPEN is refused, or undefined when it is acceptable (RFC 4271 §6.2). */
export function openRefusal (context: Pick<PeerSessionContext, 'networkId' | 'peerId' | 'config'>, open: OpenFrame): PendingNotification | undefined {
  const refuse = (subcode: number, message: string): PendingNotification =>
    ({ code: NotificationCode.openMessageError, subcode, message, stop: false })
  if (open.version !== SESSION_PROTOCOL_VERSION) return refuse(OpenErrorSubcode.unsupportedVersion, `unsupported version ${open.version}`)
  if (open.networkId !== context.networkId) return refuse(OpenErrorSubcode.wrongNetwork, `wrong network ${JSON.stringify(open.networkId)}`)
  if (open.nodeId !== context.peerId) return refuse(OpenErrorSubcode.badNodeId, 'node id does not match the authenticated peer')
  if (open.holdTimeMs < context.config.minHoldTimeMs) return refuse(OpenErrorSubcode.unacceptableHoldTime, `hold time ${open.holdTimeMs} ms below ${context.config.minHoldTimeMs} ms`)
  return undefined
}

const isFrame = <T extends SessionFrame['type']>(type: T) =>
  ({ event }: { event: PeerSessionEvent }) => event.type === 'frame.received' && event.frame.type === type

export const peerSessionMachine = setup({
  types: {
    context: {} as PeerSessionContext,
    events: {} as PeerSessionEvent,
    input: {} as PeerSessionInput
  },
  actors: {
    openSession: fromPromise<FrameStream, { transport: SessionTransport, peerId: PeerId }>(
      async ({ input, signal }) => await input.transport.openSession(input.peerId, signal)
    ),
    /** Owns the stream while the session is open: decodes inbound frames, closes it on exit. */
    runStream: fromCallback<PeerSessionEvent, { stream: FrameStream }>(({ input, sendBack }) => {
      let running = true
      input.stream.onFrame((bytes) => {
        if (!running) return
        let frame: SessionFrame
        try { frame = decode(bytes) } catch (error) {
          sendBack({ type: 'frame.invalid', reason: (error as Error).message })
          return
        }
        sendBack({ type: 'frame.received', frame })
      })
      input.stream.onClose((error) => {
        if (running) sendBack({ type: 'stream.closed', reason: error?.message ?? 'closed by peer' })
      })
      return () => { running = false; input.stream.close() }
    })
  },
  delays: {
    retryDelay: ({ context }) => backoffDelayMs(context.config.backoff, context.failures - 1, context.random.next()),
    openTimeout: ({ context }) => context.config.openTimeoutMs,
    holdTime: ({ context }) => context.holdTimeMs,
    // RFC 4271 §10: each keepalive interval (hold / 3) is jittered by a factor in [0.75, 1].
    keepaliveInterval: ({ context }) => Math.round((context.holdTimeMs / 3) * (0.75 + 0.25 * context.random.next()))
  },
  guards: {
    isInitiator: ({ context }) => context.localNodeId < context.peerId,
    isOpen: isFrame('open'),
    isKeepalive: isFrame('keepalive'),
    isLiveFrame: ({ event }) => event.type === 'frame.received' && (event.frame.type === 'keepalive' || event.frame.type === 'update'),
    isNotification: isFrame('notification'),
    isAcceptableOpen: ({ context, event }) =>
      event.type === 'frame.received' && event.frame.type === 'open' && openRefusal(context, event.frame) === undefined,
    isStopping: ({ context }) => context.closing?.stop === true
  },
  actions: {
    startIfAutomatic: enqueueActions(({ context, enqueue }) => {
      if (context.autoStart === true) enqueue.raise({ type: 'session.start' })
    }),
    adoptStream: assign({ stream: (_, stream: FrameStream) => stream }),
    sendOpen: ({ context }) => sendFrame(context, {
      type: 'open',
      version: SESSION_PROTOCOL_VERSION,
      networkId: context.networkId,
      nodeId: context.localNodeId,
      holdTimeMs: context.config.holdTimeMs,
      capabilities: context.capabilities
    }),
    sendKeepalive: ({ context }) => sendFrame(context, keepaliveFrame(context)),
    sendUpdate: ({ context, event }) => {
      if (event.type === 'session.send.update') sendFrame(context, { type: 'update', payload: event.payload })
    },
    deliverUpdate: ({ context, event }) => {
      if (event.type === 'frame.received' && event.frame.type === 'update') context.listener?.update(context.peerId, event.frame.payload)
    },
    notifyEstablished: ({ context }) => { context.listener?.established(context.peerId) },
    notifyDown: ({ context, event }) => {
      const reason = event.type === 'stream.closed' || event.type === 'frame.invalid' ? event.reason : event.type
      context.listener?.down(context.peerId, reason)
    },
    sendClosingNotification: ({ context }) => {
      const closing = context.closing
      if (closing !== undefined) sendFrame(context, { type: 'notification', code: closing.code, subcode: closing.subcode, message: closing.message })
    },
    countFrame: assign({ framesIn: ({ context }) => context.framesIn + 1 }),
    acceptOpen: assign(({ context, event }) => {
      const open = (event as { frame: OpenFrame }).frame
      return {
        holdTimeMs: Math.min(context.config.holdTimeMs, open.holdTimeMs),
        remoteCapabilities: open.capabilities
      }
    }),
    refuseOpen: assign({
      closing: ({ context, event }) => openRefusal(context, (event as { frame: OpenFrame }).frame)
    }),
    recordKeepalive: assign(({ context, event }) => {
      const frame = (event as { frame: KeepaliveFrame }).frame
      const now = context.clock.now()
      let rttMs = context.rttMs
      if (frame.echoSentAtMs > 0) {
        const sample = Math.max(0, now - frame.echoSentAtMs - frame.echoHeldMs)
        rttMs = rttMs === undefined ? sample : rttMs + RTT_SMOOTHING * (sample - rttMs)
      }
      return { rttMs, lastKeepalive: { sentAtMs: frame.sentAtMs, receivedAtMs: now } }
    }),
    markEstablished: assign({
      failures: 0,
      lastError: undefined,
      establishedAtMs: ({ context }) => context.clock.now()
    }),
    forgetSession: assign({
      stream: undefined,
      establishedAtMs: undefined,
      lastKeepalive: undefined,
      closing: undefined,
      failures: ({ context }) => context.failures + 1
    }),
    recordError: assign({ lastError: (_, reason: string) => reason }),
    closeWith: assign({ closing: (_, notification: PendingNotification) => notification }),
    countInvalid: assign({ invalidFrames: ({ context }) => context.invalidFrames + 1 })
  }
}).createMachine({
  id: 'peer-session',
  context: ({ input }) => ({
    ...input,
    capabilities: input.capabilities ?? [],
    stream: undefined,
    failures: 0,
    holdTimeMs: input.config.holdTimeMs,
    rttMs: undefined,
    lastKeepalive: undefined,
    establishedAtMs: undefined,
    lastError: undefined,
    closing: undefined,
    framesIn: 0,
    framesOut: 0,
    invalidFrames: 0,
    remoteCapabilities: []
  }),
  initial: 'idle',
  entry: 'startIfAutomatic',
  on: {
    'session.stop': { target: '.idle', actions: 'forgetSession' }
  },
  states: {
    idle: {
      on: {
        'session.start': [{ guard: 'isInitiator', target: 'connect' }, { target: 'active' }],
        // Idle refuses connections (RFC 4271 §8.2.2): close the stream so it does not linger.
        'session.incoming': { actions: ({ event }) => { event.stream.close() } }
      }
    },
    connect: {
      invoke: {
        src: 'openSession',
        input: ({ context }) => ({ transport: context.transport, peerId: context.peerId }),
        onDone: { target: 'opened', actions: { type: 'adoptStream', params: ({ event }) => event.output } },
        onError: {
          target: 'active',
          actions: [
            'forgetSession',
            { type: 'recordError', params: ({ event }) => `connect failed: ${(event.error as Error)?.message ?? String(event.error)}` }
          ]
        }
      },
      on: {
        'session.incoming': { target: 'opened', actions: { type: 'adoptStream', params: ({ event }) => event.stream } }
      }
    },
    active: {
      after: { retryDelay: { guard: 'isInitiator', target: 'connect' } },
      on: {
        'session.incoming': { target: 'opened', actions: { type: 'adoptStream', params: ({ event }) => event.stream } },
        'peer.connected': { guard: 'isInitiator', target: 'connect' }
      }
    },
    opened: {
      invoke: { id: 'stream', src: 'runStream', input: ({ context }) => ({ stream: context.stream as FrameStream }) },
      entry: 'sendOpen',
      initial: 'openSent',
      on: {
        'frame.received': { actions: 'countFrame' },
        'frame.invalid': {
          target: '.closing',
          actions: [
            'countInvalid',
            { type: 'closeWith', params: ({ event }) => ({ code: NotificationCode.messageHeaderError, subcode: 0, message: event.reason, stop: false }) }
          ]
        },
        'stream.closed': {
          target: 'active',
          actions: ['forgetSession', { type: 'recordError', params: ({ event }) => `stream closed: ${event.reason}` }]
        },
        'session.incoming': {
          // The peer restarted and dialled again: the old stream is dead, adopt the new one.
          target: 'opened', reenter: true, actions: { type: 'adoptStream', params: ({ event }) => event.stream }
        },
        'session.stop': {
          target: '.closing',
          actions: { type: 'closeWith', params: { code: NotificationCode.cease, subcode: 0, message: 'session stopped', stop: true } }
        }
      },
      states: {
        openSent: {
          after: {
            openTimeout: {
              target: 'closing',
              actions: { type: 'closeWith', params: { code: NotificationCode.holdTimerExpired, subcode: 0, message: 'no OPEN before timeout', stop: false } }
            }
          },
          on: {
            'frame.received': [
              { guard: 'isAcceptableOpen', target: 'openConfirm', actions: ['countFrame', 'acceptOpen', 'sendKeepalive'] },
              { guard: 'isOpen', target: 'closing', actions: ['countFrame', 'refuseOpen'] },
              { guard: 'isNotification', target: 'closed', actions: 'countFrame' },
              {
                target: 'closing',
                actions: ['countFrame', { type: 'closeWith', params: { code: NotificationCode.finiteStateMachineError, subcode: 1, message: 'expected OPEN', stop: false } }]
              }
            ]
          }
        },
        openConfirm: {
          after: {
            holdTime: {
              target: 'closing',
              actions: { type: 'closeWith', params: { code: NotificationCode.holdTimerExpired, subcode: 0, message: 'hold timer expired', stop: false } }
            }
          },
          on: {
            'frame.received': [
              { guard: 'isKeepalive', target: 'established', actions: ['countFrame', 'recordKeepalive'] },
              { guard: 'isNotification', target: 'closed', actions: 'countFrame' },
              {
                target: 'closing',
                actions: ['countFrame', { type: 'closeWith', params: { code: NotificationCode.finiteStateMachineError, subcode: 2, message: 'expected KEEPALIVE', stop: false } }]
              }
            ]
          }
        },
        established: {
          type: 'parallel',
          entry: ['markEstablished', 'notifyEstablished'],
          exit: 'notifyDown',
          on: {
            'session.send.update': { actions: 'sendUpdate' },
            'frame.received': [
              { guard: 'isNotification', target: 'closed', actions: 'countFrame' },
              { guard: 'isOpen', target: 'closing', actions: ['countFrame', { type: 'closeWith', params: { code: NotificationCode.finiteStateMachineError, subcode: 3, message: 'unexpected OPEN', stop: false } }] }
            ]
          },
          states: {
            hold: {
              initial: 'counting',
              states: {
                counting: {
                  after: {
                    holdTime: {
                      target: '#peer-session.opened.closing',
                      actions: { type: 'closeWith', params: { code: NotificationCode.holdTimerExpired, subcode: 0, message: 'hold timer expired', stop: false } }
                    }
                  },
                  on: {
                    // Any KEEPALIVE or UPDATE restarts the hold timer (RFC 4271 §8.2.2, Established).
                    'frame.received': [
                      { guard: 'isKeepalive', target: 'counting', reenter: true, actions: ['countFrame', 'recordKeepalive'] },
                      { guard: 'isLiveFrame', target: 'counting', reenter: true, actions: ['countFrame', 'deliverUpdate'] }
                    ]
                  }
                }
              }
            },
            keepalive: {
              initial: 'waiting',
              states: {
                waiting: { after: { keepaliveInterval: { target: 'waiting', reenter: true, actions: 'sendKeepalive' } } }
              }
            }
          }
        },
        /** Transient: say why in a NOTIFICATION while the stream is still open, then leave. */
        closing: {
          entry: 'sendClosingNotification',
          always: [
            { guard: 'isStopping', target: '#peer-session.idle', actions: 'forgetSession' },
            { target: '#peer-session.active', actions: [{ type: 'recordError', params: ({ context }) => `sent NOTIFICATION: ${context.closing?.message ?? ''}` }, 'forgetSession'] }
          ]
        },
        /** Transient: the peer sent a NOTIFICATION; close without answering (RFC 4271 §6). */
        closed: {
          always: {
            target: '#peer-session.active',
            actions: [
              { type: 'recordError', params: ({ event }) => `peer sent NOTIFICATION: ${((event as { frame?: NotificationFrame }).frame?.message) ?? ''}` },
              'forgetSession'
            ]
          }
        }
      }
    }
  }
})

/** The top-level state name, as status and checkers report it. */
export function sessionStateName (value: unknown): string {
  if (typeof value === 'string') return value
  if (value !== null && typeof value === 'object') {
    const [top, inner] = Object.entries(value)[0] ?? []
    if (top === 'opened' && typeof inner === 'string') return inner
    if (top === 'opened' && inner !== null && typeof inner === 'object') return Object.keys(inner)[0] ?? 'opened'
    return top ?? 'unknown'
  }
  return 'unknown'
}
