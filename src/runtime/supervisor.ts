// Supervision for xstate v5 actors, which have none. Restart types, strategies and restart intensity
// follow Erlang/OTP ("Supervisor Behaviour", OTP Design Principles); restart delays follow Akka's
// BackoffSupervisor (exponential from minMs to maxMs, random factor, reset after a quiet spell).
// Every root actor we start gets an error observer: an unobserved xstate root error is rethrown from a
// real setTimeout and kills the process. Time comes only from the injected Clock, chance only from
// the injected Random, so the simulator replays a supervision tree exactly.
import type { ActorOptions, AnyActorLogic, AnyActorRef } from 'xstate'
import type { Clock, Inspector, Random, TimerHandle, Unsubscribe } from './ports.ts'

export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one'
/** permanent: always restarted; transient: only after an error; temporary: never. */
export type RestartType = 'permanent' | 'transient' | 'temporary'

export interface BackoffOptions {
  /** Delay before the first restart; 0 restarts at once. */
  minMs: number
  /** Cap for the doubling delay (before jitter). */
  maxMs: number
  /** Fraction in [0, 1]: the delay is scaled by a factor drawn uniformly from [1 - jitter, 1 + jitter). */
  jitter: number
  /** A child that ran this long without failing starts again from minMs. */
  resetAfterMs: number
}

/** What a nested supervisor inherits from its parent; spread it into createSupervisor. */
export interface SupervisorDefaults {
  clock: Clock
  random: Random
  inspector?: Inspector
  /** xstate inspection observer handed to every actor through ChildStartContext.actorOptions. */
  inspect?: ActorOptions<AnyActorLogic>['inspect']
  node?: string
  /** systemId of the supervising parent, for inspection events. */
  parent?: string
}

export interface SupervisorOptions extends SupervisorDefaults {
  id: string
  strategy: Strategy
  /** Most restarts allowed within periodMs; one more escalates. OTP's default is 1 in 5 s. */
  intensity?: number
  periodMs?: number
  /** Without it restarts happen at once. */
  backoff?: BackoffOptions
  /** Started in order by start(). */
  children?: readonly ChildSpec[]
  /** Called after this supervisor has stopped every child because of too many restarts. */
  onEscalate?: (error: SupervisorEscalationError) => void
}

/** Everything a spec needs to build its child for the current incarnation. */
export interface ChildStartContext {
  id: string
  kind: string
  /** 0 for the first start, then one more per restart. */
  incarnation: number
  clock: Clock
  /** Fork labelled `<id>#<incarnation>`, so a restarted child does not replay its predecessor's draws. */
  random: Random
  /** Spread into createActor: `createActor(machine, { ...ctx.actorOptions, input })`. */
  actorOptions: { clock: Clock, systemId: string, inspect?: ActorOptions<AnyActorLogic>['inspect'] }
  /** Spread into createSupervisor for a nested supervisor. */
  supervisorDefaults: SupervisorDefaults
}

/**
 * What a spec's start function returns, not yet started: the supervisor subscribes first, then
 * starts it, so no error can slip past unobserved.
 */
export type SupervisedChild =
  | { kind: 'actor', actor: AnyActorRef }
  | { kind: 'supervisor', supervisor: Supervisor }

export interface ChildSpec {
  /** Unique among siblings; also the actor's systemId, e.g. `peer-session:n17`. */
  id: string
  kind: string
  restart: RestartType
  start: (ctx: ChildStartContext) => SupervisedChild
}

/**
 * running; restarting: waiting for its backoff timer; stopped: terminated by terminateChild or by
 * stopping the supervisor; exited: ended normally and, being transient, stays down.
 */
export type ChildStatus = 'running' | 'restarting' | 'stopped' | 'exited'

export interface ChildInfo {
  id: string
  kind: string
  restart: RestartType
  status: ChildStatus
  /** Times this child was started again after its first start (own failures and siblings'). */
  restarts: number
}

export interface SupervisionTree {
  id: string
  kind: string
  strategy?: Strategy
  /** An actor's state value while it runs. */
  state?: unknown
  status: SupervisorStatus | ChildStatus
  restarts?: number
  children?: SupervisionTree[]
}

export type SupervisorStatus = 'idle' | 'running' | 'stopped' | 'escalated'
export type SupervisorExit =
  | { reason: 'escalated', error: SupervisorEscalationError }
  | { reason: 'stopped' }

export interface Supervisor {
  readonly id: string
  readonly strategy: Strategy
  status(): SupervisorStatus
  /**
   * Starts the initial children in order. Synchronous; idempotent while running. A stopped or
   * escalated supervisor starts afresh from options.children, dropping children added by startChild
   * (OTP re-runs init), so a parent's spec may hand back the same instance on every restart.
   */
  start(): void
  /**
   * Stops every child in reverse start order and cancels pending restarts. The work is done before
   * it returns; the promise is for the start/stop convention. Idempotent.
   */
  stop(): Promise<void>
  /** Starts the child now (or at start() if not started yet). Throws on a duplicate id. */
  startChild(spec: ChildSpec): ChildInfo
  /** Stops the child (cancelling a pending restart) and forgets its spec. False if unknown. */
  stopChild(id: string): boolean
  /** Stops the child but keeps its spec, listed as 'stopped' (temporary children are forgotten). */
  terminateChild(id: string): boolean
  /** Starts a 'stopped' or 'exited' child again; not counted as a restart. */
  restartChild(id: string): boolean
  children(): ChildInfo[]
  /** The running incarnation of a child, to send it events; undefined unless 'running'. */
  child(id: string): SupervisedChild | undefined
  tree(): SupervisionTree
  /** Told once, when this supervisor stops or escalates. Its parent uses this. */
  watch(listener: (exit: SupervisorExit) => void): Unsubscribe
}

export class SupervisorError extends Error {
  override name = 'SupervisorError'
}

/** Raised to the parent (or onEscalate) when restarts exceed intensity within periodMs. */
export class SupervisorEscalationError extends Error {
  override name = 'SupervisorEscalationError'
  constructor (readonly supervisorId: string, readonly childId: string, readonly restartsInPeriod: number, cause: unknown) {
    super(`supervisor ${supervisorId}: child ${childId} failed, ${restartsInPeriod} restarts within the period exceed the intensity`, { cause })
  }
}

export const DEFAULT_INTENSITY = 1
export const DEFAULT_PERIOD_MS = 5000
/** 2^30 × minMs is past any sane maxMs; capping the exponent keeps the arithmetic finite. */
const MAX_BACKOFF_EXPONENT = 30

/**
 * Delay before restart number `consecutive + 1` of a child (Akka BackoffSupervisor): minMs doubled
 * per consecutive restart, capped at maxMs, then scaled by ±jitter. Draws from `random` only when
 * jitter > 0.
 */
export function backoffDelayMs (backoff: BackoffOptions | undefined, consecutive: number, random: Random): number {
  if (backoff === undefined) return 0
  const base = Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.min(consecutive, MAX_BACKOFF_EXPONENT))
  if (backoff.jitter === 0 || base === 0) return base
  const factor = 1 + backoff.jitter * (2 * random.next() - 1)
  return Math.max(0, Math.round(base * factor))
}

/**
 * OTP's restart intensity: keep the restart times within periodMs of now (inclusive, as
 * supervisor:add_restart does), add now, and report whether that exceeds the intensity.
 */
export function recordRestart (times: number[], nowMs: number, periodMs: number, intensity: number): { times: number[], exceeded: boolean } {
  const kept = times.filter(t => nowMs - t <= periodMs)
  kept.push(nowMs)
  return { times: kept, exceeded: kept.length > intensity }
}

interface ChildExit {
  /** Set for abnormal exits: an actor error or a child supervisor's escalation. */
  error?: unknown
  reason: string
}

interface Incarnation {
  child: SupervisedChild
  detach: Unsubscribe
}

/** One pending delayed restart; a group restart shares one plan. */
interface RestartPlan {
  timer: TimerHandle | undefined
  members: Set<ChildEntry>
}

interface ChildEntry {
  spec: ChildSpec
  status: ChildStatus
  restarts: number
  incarnation: number
  startedAtMs: number
  /** Backoff exponent: restarts since the child last ran resetAfterMs without failing. */
  consecutive: number
  current: Incarnation | undefined
  plan: RestartPlan | undefined
}

function checkOptions (options: SupervisorOptions): void {
  const fail = (message: string): never => { throw new SupervisorError(`supervisor ${options.id}: ${message}`) }
  if (typeof options.id !== 'string' || options.id === '') fail('id must be a non-empty string')
  if (options.clock === undefined) fail('missing component: clock')
  if (options.random === undefined) fail('missing component: random')
  const intensity = options.intensity ?? DEFAULT_INTENSITY
  if (!Number.isSafeInteger(intensity) || intensity < 0) fail(`intensity must be an integer >= 0, got ${intensity}`)
  const periodMs = options.periodMs ?? DEFAULT_PERIOD_MS
  if (!(periodMs > 0) || !Number.isFinite(periodMs)) fail(`periodMs must be > 0, got ${periodMs}`)
  const backoff = options.backoff
  if (backoff !== undefined) {
    if (!(backoff.minMs >= 0) || !(backoff.maxMs >= backoff.minMs) || !Number.isFinite(backoff.maxMs)) {
      fail(`backoff needs 0 <= minMs <= maxMs, got ${backoff.minMs}..${backoff.maxMs}`)
    }
    if (!(backoff.jitter >= 0 && backoff.jitter <= 1)) fail(`backoff.jitter must be in [0, 1], got ${backoff.jitter}`)
    if (!(backoff.resetAfterMs >= 0)) fail(`backoff.resetAfterMs must be >= 0, got ${backoff.resetAfterMs}`)
  }
}

export function createSupervisor (options: SupervisorOptions): Supervisor {
  checkOptions(options)
  return new SupervisorImpl(options)
}

function errorReason (error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}

class SupervisorImpl implements Supervisor {
  readonly id: string
  readonly strategy: Strategy
  private state: SupervisorStatus = 'idle'
  private entries: ChildEntry[] = []
  private restartTimes: number[] = []
  private readonly watchers = new Set<(exit: SupervisorExit) => void>()
  private readonly intensity: number
  private readonly periodMs: number

  constructor (private readonly options: SupervisorOptions) {
    this.id = options.id
    this.strategy = options.strategy
    this.intensity = options.intensity ?? DEFAULT_INTENSITY
    this.periodMs = options.periodMs ?? DEFAULT_PERIOD_MS
    for (const spec of options.children ?? []) this.addEntry(spec)
  }

  status (): SupervisorStatus {
    return this.state
  }

  start (): void {
    if (this.state === 'running') return
    if (this.state !== 'idle') this.reset()
    this.state = 'running'
    for (const entry of [...this.entries]) {
      if (this.state !== 'running') return
      if (entry.status === 'stopped' && this.entries.includes(entry)) this.startEntry(entry)
    }
  }

  async stop (): Promise<void> {
    if (this.state === 'stopped' || this.state === 'escalated') return
    const wasRunning = this.state === 'running'
    this.state = 'stopped'
    this.stopAll()
    if (wasRunning) this.notify({ reason: 'stopped' })
  }

  startChild (spec: ChildSpec): ChildInfo {
    if (this.state === 'stopped' || this.state === 'escalated') {
      throw new SupervisorError(`supervisor ${this.id}: cannot start child ${spec.id}, supervisor is ${this.state}`)
    }
    const entry = this.addEntry(spec)
    if (this.state === 'running') this.startEntry(entry)
    return this.info(entry)
  }

  stopChild (id: string): boolean {
    const entry = this.find(id)
    if (entry === undefined) return false
    this.halt(entry)
    this.remove(entry)
    this.emit(entry, 'stop', 'stopChild')
    return true
  }

  terminateChild (id: string): boolean {
    const entry = this.find(id)
    if (entry === undefined) return false
    this.halt(entry)
    entry.status = 'stopped'
    if (entry.spec.restart === 'temporary') this.remove(entry)
    this.emit(entry, 'stop', 'terminateChild')
    return true
  }

  restartChild (id: string): boolean {
    const entry = this.find(id)
    if (entry === undefined || this.state !== 'running') return false
    if (entry.status !== 'stopped' && entry.status !== 'exited') return false
    this.startEntry(entry)
    return true
  }

  children (): ChildInfo[] {
    return this.entries.map(entry => this.info(entry))
  }

  child (id: string): SupervisedChild | undefined {
    return this.find(id)?.current?.child
  }

  tree (): SupervisionTree {
    return {
      id: this.id,
      kind: 'supervisor',
      strategy: this.strategy,
      status: this.state,
      children: this.entries.map(entry => this.childTree(entry))
    }
  }

  watch (listener: (exit: SupervisorExit) => void): Unsubscribe {
    this.watchers.add(listener)
    return () => { this.watchers.delete(listener) }
  }

  private reset (): void {
    this.entries = []
    this.restartTimes = []
    for (const spec of this.options.children ?? []) this.addEntry(spec)
  }

  private childTree (entry: ChildEntry): SupervisionTree {
    const base = { id: entry.spec.id, kind: entry.spec.kind, status: entry.status, restarts: entry.restarts }
    const child = entry.current?.child
    if (child?.kind === 'supervisor') {
      const nested = child.supervisor.tree()
      return { ...base, strategy: nested.strategy, children: nested.children }
    }
    if (child?.kind === 'actor') {
      const snapshot = child.actor.getSnapshot() as { value?: unknown } | undefined
      return { ...base, state: snapshot?.value }
    }
    return base
  }

  private info (entry: ChildEntry): ChildInfo {
    const { id, kind, restart } = entry.spec
    return { id, kind, restart, status: entry.status, restarts: entry.restarts }
  }

  private find (id: string): ChildEntry | undefined {
    return this.entries.find(entry => entry.spec.id === id)
  }

  private addEntry (spec: ChildSpec): ChildEntry {
    if (typeof spec.id !== 'string' || spec.id === '') throw new SupervisorError(`supervisor ${this.id}: child id must be a non-empty string`)
    if (this.find(spec.id) !== undefined) throw new SupervisorError(`supervisor ${this.id}: duplicate child id ${spec.id}`)
    const entry: ChildEntry = {
      spec, status: 'stopped', restarts: 0, incarnation: 0, startedAtMs: 0, consecutive: 0, current: undefined, plan: undefined
    }
    this.entries.push(entry)
    return entry
  }

  private remove (entry: ChildEntry): void {
    const index = this.entries.indexOf(entry)
    if (index >= 0) this.entries.splice(index, 1)
  }

  private context (entry: ChildEntry): ChildStartContext {
    const { clock, random, inspector, inspect, node } = this.options
    const { id, kind } = entry.spec
    const incarnation = entry.incarnation
    const childRandom = random.fork(`${id}#${incarnation}`)
    return {
      id,
      kind,
      incarnation,
      clock,
      random: childRandom,
      actorOptions: inspect === undefined ? { clock, systemId: id } : { clock, systemId: id, inspect },
      supervisorDefaults: { clock, random: childRandom, inspector, inspect, node, parent: this.id }
    }
  }

  /** Builds, watches and starts one incarnation. A failure on the way is handled like any exit. */
  private startEntry (entry: ChildEntry): void {
    const context = this.context(entry)
    entry.incarnation++
    entry.startedAtMs = this.options.clock.now()
    entry.status = 'running'
    let child: SupervisedChild
    try {
      child = entry.spec.start(context)
      if (child?.kind !== 'actor' && child?.kind !== 'supervisor') throw new SupervisorError(`child ${entry.spec.id}: start() returned no SupervisedChild`)
    } catch (error) {
      this.handleExit(entry, { error, reason: `start failed: ${errorReason(error)}` })
      return
    }
    const incarnation: Incarnation = { child, detach: () => {} }
    entry.current = incarnation
    const onExit = (exit: ChildExit): void => {
      if (entry.current !== incarnation) return
      incarnation.detach()
      entry.current = undefined
      this.handleExit(entry, exit)
    }
    if (child.kind === 'actor') {
      const actor = child.actor
      const subscription = actor.subscribe({
        error: (error: unknown) => onExit({ error, reason: errorReason(error) }),
        complete: () => onExit({ reason: actor.getSnapshot()?.status === 'done' ? 'normal' : 'shutdown' })
      })
      incarnation.detach = () => subscription.unsubscribe()
    } else {
      incarnation.detach = child.supervisor.watch(exit => {
        onExit(exit.reason === 'escalated' ? { error: exit.error, reason: errorReason(exit.error) } : { reason: 'shutdown' })
      })
    }
    // subscribe() reports at once on an actor that was already dead; then there is nothing to start.
    if (entry.current !== incarnation) return
    try {
      if (child.kind === 'actor') child.actor.start()
      else child.supervisor.start()
    } catch (error) {
      // A hand-written actor ref may throw here. An error thrown after the exit was handled (say, by
      // onEscalate) is not the child's and must not be swallowed.
      if (entry.current !== incarnation) throw error
      onExit({ error, reason: `start failed: ${errorReason(error)}` })
    }
  }

  /** Stops the running incarnation (without hearing about it) or cancels the pending restart. */
  private halt (entry: ChildEntry): void {
    this.leavePlan(entry)
    const incarnation = entry.current
    if (incarnation === undefined) return
    entry.current = undefined
    incarnation.detach()
    if (incarnation.child.kind === 'actor') incarnation.child.actor.stop()
    else void incarnation.child.supervisor.stop()
  }

  private leavePlan (entry: ChildEntry): void {
    const plan = entry.plan
    if (plan === undefined) return
    entry.plan = undefined
    plan.members.delete(entry)
    if (plan.members.size === 0 && plan.timer !== undefined) {
      this.options.clock.clearTimeout(plan.timer)
      plan.timer = undefined
    }
  }

  private stopAll (): void {
    for (const entry of [...this.entries].reverse()) {
      this.halt(entry)
      entry.status = 'stopped'
    }
  }

  private handleExit (entry: ChildEntry, exit: ChildExit): void {
    if (this.state !== 'running') return
    const abnormal = exit.error !== undefined
    const restart = entry.spec.restart
    if (restart === 'temporary' || (restart === 'transient' && !abnormal)) {
      entry.status = 'exited'
      if (restart === 'temporary') this.remove(entry)
      this.emit(entry, 'give_up', exit.reason)
      return
    }
    const now = this.options.clock.now()
    const intensity = recordRestart(this.restartTimes, now, this.periodMs, this.intensity)
    this.restartTimes = intensity.times
    if (intensity.exceeded) {
      this.escalate(entry, exit, intensity.times.length)
      return
    }
    const backoff = this.options.backoff
    if (backoff !== undefined && now - entry.startedAtMs >= backoff.resetAfterMs) entry.consecutive = 0
    const delayMs = backoffDelayMs(backoff, entry.consecutive, this.options.random)
    entry.consecutive++
    const group = this.restartGroup(entry)
    this.emit(entry, 'restart', exit.reason, { delayMs, group: group.map(member => member.spec.id) })
    this.schedule(group, delayMs)
  }

  /**
   * The failed child plus the siblings its strategy takes down with it, in start order; running
   * siblings are stopped in reverse order, temporary ones are forgotten (OTP never restarts them).
   */
  private restartGroup (failed: ChildEntry): ChildEntry[] {
    const index = this.entries.indexOf(failed)
    const candidates = this.strategy === 'one_for_one'
      ? []
      : this.entries.filter((entry, i) => entry !== failed && (this.strategy === 'one_for_all' || i > index))
    const siblings = candidates.filter(entry => entry.status === 'running' || entry.status === 'restarting')
    for (const sibling of [...siblings].reverse()) {
      this.halt(sibling)
      if (sibling.spec.restart === 'temporary') {
        sibling.status = 'exited'
        this.remove(sibling)
        this.emit(sibling, 'give_up', `sibling ${failed.spec.id} failed`)
      }
    }
    this.leavePlan(failed)
    return this.entries.filter(entry => entry === failed || (siblings.includes(entry) && entry.spec.restart !== 'temporary'))
  }

  private schedule (group: ChildEntry[], delayMs: number): void {
    const plan: RestartPlan = { timer: undefined, members: new Set(group) }
    for (const entry of group) {
      entry.status = 'restarting'
      entry.plan = plan
    }
    if (delayMs > 0) {
      plan.timer = this.options.clock.setTimeout(() => { plan.timer = undefined; this.runPlan(plan) }, delayMs)
    } else {
      this.runPlan(plan)
    }
  }

  /** Starts the plan's members in start order; a member that failed meanwhile may have left it. */
  private runPlan (plan: RestartPlan): void {
    const members = this.entries.filter(entry => plan.members.has(entry))
    for (const entry of members) {
      if (this.state !== 'running') return
      if (entry.plan !== plan) continue
      plan.members.delete(entry)
      entry.plan = undefined
      entry.restarts++
      this.startEntry(entry)
    }
  }

  private escalate (entry: ChildEntry, exit: ChildExit, restartsInPeriod: number): void {
    const error = new SupervisorEscalationError(this.id, entry.spec.id, restartsInPeriod, exit.error ?? exit.reason)
    this.state = 'escalated'
    this.stopAll()
    this.emit(entry, 'escalate', exit.reason, { restartsInPeriod })
    this.notify({ reason: 'escalated', error })
    this.options.onEscalate?.(error)
  }

  private notify (exit: SupervisorExit): void {
    const watchers = [...this.watchers]
    this.watchers.clear()
    for (const watcher of watchers) watcher(exit)
  }

  private emit (entry: ChildEntry, decision: 'restart' | 'escalate' | 'stop' | 'give_up', reason: string, extra: Record<string, unknown> = {}): void {
    const inspector = this.options.inspector
    if (inspector === undefined) return
    inspector.emit({
      t: this.options.clock.now(),
      node: this.options.node ?? '',
      kind: 'supervisor',
      systemId: this.id,
      actor: 'supervisor',
      ...(this.options.parent === undefined ? {} : { parent: this.options.parent }),
      detail: { child: entry.spec.id, decision, reason, restarts: entry.restarts, ...extra }
    })
  }
}
