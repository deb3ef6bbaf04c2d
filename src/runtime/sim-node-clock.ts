// One simulated node's view of the shared virtual clock, for two faults of a single machine:
//
// - clock skew: now() reads the shared time plus an offset. Timers stay relative delays on the
//   shared clock, so a skewed node's timers fire in the same global order as everyone else's and
//   the shared heap never sees a shifted due time; only what the node reads as "now" moves.
// - CPU stall: while stalled, nothing the node would process runs — a timer that comes due, or a
//   delivery the network schedules through this clock, is put off to the end of the stall and then
//   runs in the order it came due (each one re-arms at the stall's end in firing order, and the
//   shared clock breaks ties by arming order).
//
// Everything a node processes goes through its NodeClock: the NodeHost's timers (and xstate's
// delays), its overlay's gossip heartbeat, and the network's deliveries to it (sim-network.ts).
import type { Clock, TimerHandle } from './ports.ts'

export class NodeClock implements Clock {
  /** Added to the shared clock's now(); may be negative. */
  skewMs = 0
  /** Shared-clock time at which the current stall ends (in the past when not stalled). */
  stalledUntilMs = -Infinity
  /** Timers put off by a stall: the handle given out → the handle of its re-armed timer. */
  private readonly deferred = new Map<TimerHandle, TimerHandle>()

  constructor (readonly base: Clock) {}

  now (): number {
    return this.base.now() + this.skewMs
  }

  setTimeout (callback: () => void, delayMs: number): TimerHandle {
    const handle: TimerHandle = this.base.setTimeout(() => { this.fire(handle, callback) }, delayMs)
    return handle
  }

  clearTimeout (handle: TimerHandle): void {
    const moved = this.deferred.get(handle)
    if (moved === undefined) {
      this.base.clearTimeout(handle)
      return
    }
    this.deferred.delete(handle)
    this.base.clearTimeout(moved)
  }

  /** Stall until shared time `untilMs` (extends a stall in progress, never shortens it). */
  stallUntil (untilMs: number): void {
    if (!Number.isFinite(untilMs)) throw new RangeError(`NodeClock.stallUntil: untilMs must be finite, got ${untilMs}`)
    this.stalledUntilMs = Math.max(this.stalledUntilMs, untilMs)
  }

  isStalled (): boolean {
    return this.stalledUntilMs > this.base.now()
  }

  /** Timers waiting for a stall to end. */
  get deferredCount (): number {
    return this.deferred.size
  }

  /**
   * A new process on the same machine: no stall carries over (the skew does: it is the machine's).
   * Timers already put off stay tracked, so the old process can still clear them.
   */
  reset (): void {
    this.stalledUntilMs = -Infinity
  }

  private fire (handle: TimerHandle, callback: () => void): void {
    const now = this.base.now()
    if (this.stalledUntilMs > now) {
      this.deferred.set(handle, this.base.setTimeout(() => { this.fire(handle, callback) }, this.stalledUntilMs - now))
      return
    }
    this.deferred.delete(handle)
    callback()
  }
}
