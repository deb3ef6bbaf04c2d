// Property: for random supervision trees and random operation sequences, the real supervisor agrees
// after every step with a small reference model of the OTP rules (statuses, restart counts, how many
// times each child was created, pending restart timers), and no actor or supervisor outlives the
// supervisor that owns it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { createActor, setup, type AnyActorRef } from 'xstate'
import { VirtualClock } from '../../src/runtime/clock.ts'
import { createRandom } from '../../src/runtime/random.ts'
import {
  createSupervisor,
  type BackoffOptions, type ChildSpec, type ChildStatus, type RestartType, type Strategy, type Supervisor, type SupervisorStatus
} from '../../src/runtime/supervisor.ts'

const SEED = 20240917
const NUM_RUNS = 200

const workerMachine = setup({
  types: { events: {} as { type: 'worker.crash' } | { type: 'worker.finish' } },
  actions: { throwCrash: () => { throw new Error('worker crashed') } }
}).createMachine({
  initial: 'working',
  states: {
    working: { on: { 'worker.crash': { actions: 'throwCrash' }, 'worker.finish': 'finished' } },
    finished: { type: 'final' }
  }
})

// --- generated configurations -------------------------------------------------------------------

interface WorkerConfig { type: 'worker', restart: RestartType }
interface SupervisorConfig {
  type: 'supervisor'
  restart: RestartType
  strategy: Strategy
  intensity: number
  periodMs: number
  backoff: BackoffOptions | undefined
  children: NodeConfig[]
}
type NodeConfig = WorkerConfig | SupervisorConfig

type Operation =
  | { type: 'crash' | 'finish' | 'stopChild', pick: number }
  | { type: 'advance', ms: number }
  | { type: 'stopRoot' }

const restartArb = fc.constantFrom<RestartType>('permanent', 'transient', 'temporary')
const workerArb: fc.Arbitrary<NodeConfig> = fc.record({ type: fc.constant('worker' as const), restart: restartArb })
const backoffArb = fc.option(
  fc.record({
    minMs: fc.constantFrom(0, 50, 100),
    maxMs: fc.constantFrom(100, 400),
    jitter: fc.constant(0),
    resetAfterMs: fc.constantFrom(150, 1000)
  }),
  { nil: undefined }
)

function supervisorArb (depth: number): fc.Arbitrary<SupervisorConfig> {
  const child = depth === 0 ? workerArb : fc.oneof({ weight: 3, arbitrary: workerArb }, { weight: 1, arbitrary: supervisorArb(depth - 1) })
  return fc.record({
    type: fc.constant('supervisor' as const),
    restart: restartArb,
    strategy: fc.constantFrom<Strategy>('one_for_one', 'one_for_all', 'rest_for_one'),
    intensity: fc.integer({ min: 0, max: 4 }),
    periodMs: fc.constantFrom(300, 1000, 5000),
    backoff: backoffArb,
    children: fc.array(child, { minLength: 1, maxLength: depth === 2 ? 4 : 3 })
  })
}

/** The root tolerates more restarts, so most steps exercise a live tree rather than an escalated one. */
const rootArb = fc.tuple(supervisorArb(2), fc.integer({ min: 1, max: 8 }))
  .map(([config, intensity]) => ({ ...config, intensity }))

const operationArb: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 16, arbitrary: fc.record({ type: fc.constant('crash' as const), pick: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ type: fc.constant('finish' as const), pick: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ type: fc.constant('stopChild' as const), pick: fc.nat() }) },
  { weight: 15, arbitrary: fc.record({
      type: fc.constant('advance' as const),
      // Small steps land between backoff deadlines (50..400 ms) and so pin their exact values.
      ms: fc.oneof(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 1500 }))
    }) },
  { weight: 1, arbitrary: fc.constant({ type: 'stopRoot' as const }) }
)

// --- reference model ----------------------------------------------------------------------------

interface ModelPlan { dueMs: number, seq: number, owner: ModelSupervisor, members: Set<ModelChild>, live: boolean }
interface ModelChild {
  path: string
  config: NodeConfig
  owner: ModelSupervisor
  status: ChildStatus
  restarts: number
  startedAtMs: number
  consecutive: number
  running: boolean
  nested: ModelSupervisor | undefined
  plan: ModelPlan | undefined
}
interface ModelSupervisor {
  config: SupervisorConfig
  status: SupervisorStatus
  restartTimes: number[]
  entries: ModelChild[]
  ownerChild: ModelChild | undefined
}

/** The OTP rules written as plainly as possible, with no xstate and no clock. */
class Model {
  nowMs = 0
  seq = 0
  plans: ModelPlan[] = []
  creations = new Map<string, number>()
  rootEscalations = 0
  readonly root: ModelSupervisor

  constructor (config: SupervisorConfig) {
    this.root = this.supervisor('root', config, undefined)
    this.startSupervisor(this.root)
  }

  supervisor (path: string, config: SupervisorConfig, ownerChild: ModelChild | undefined): ModelSupervisor {
    const supervisor: ModelSupervisor = { config, status: 'idle', restartTimes: [], entries: [], ownerChild }
    supervisor.entries = config.children.map((child, i) => ({
      path: `${path}/${i}`, config: child, owner: supervisor, status: 'stopped', restarts: 0, startedAtMs: 0, consecutive: 0, running: false, nested: undefined, plan: undefined
    }))
    return supervisor
  }

  startSupervisor (supervisor: ModelSupervisor): void {
    supervisor.status = 'running'
    for (const entry of [...supervisor.entries]) {
      if (supervisor.status !== 'running') return
      if (entry.status === 'stopped') this.startEntry(entry)
    }
  }

  startEntry (entry: ModelChild): void {
    this.creations.set(entry.path, (this.creations.get(entry.path) ?? 0) + 1)
    entry.startedAtMs = this.nowMs
    entry.status = 'running'
    entry.running = true
    if (entry.config.type === 'supervisor') {
      entry.nested = this.supervisor(entry.path, entry.config, entry)
      this.startSupervisor(entry.nested)
    }
  }

  exit (entry: ModelChild, abnormal: boolean): void {
    entry.running = false
    entry.nested = undefined
    const owner = entry.owner
    if (owner.status !== 'running') return
    const restart = entry.config.restart
    if (restart === 'temporary' || (restart === 'transient' && !abnormal)) {
      entry.status = 'exited'
      if (restart === 'temporary') this.remove(entry)
      return
    }
    owner.restartTimes = [...owner.restartTimes.filter(t => this.nowMs - t <= owner.config.periodMs), this.nowMs]
    if (owner.restartTimes.length > owner.config.intensity) return this.escalate(owner)
    const backoff = owner.config.backoff
    if (backoff !== undefined && this.nowMs - entry.startedAtMs >= backoff.resetAfterMs) entry.consecutive = 0
    const delayMs = backoff === undefined ? 0 : Math.min(backoff.maxMs, backoff.minMs * 2 ** entry.consecutive)
    entry.consecutive++
    const index = owner.entries.indexOf(entry)
    const strategy = owner.config.strategy
    const siblings = owner.entries.filter((other, i) =>
      other !== entry && strategy !== 'one_for_one' && (strategy === 'one_for_all' || i > index) &&
      (other.status === 'running' || other.status === 'restarting'))
    for (const sibling of [...siblings].reverse()) {
      this.halt(sibling)
      if (sibling.config.restart === 'temporary') this.remove(sibling)
    }
    this.leavePlan(entry)
    const group = owner.entries.filter(other => other === entry || siblings.includes(other))
    const plan: ModelPlan = { dueMs: this.nowMs + delayMs, seq: delayMs > 0 ? this.seq++ : -1, owner, members: new Set(group), live: true }
    for (const member of group) {
      member.status = 'restarting'
      member.plan = plan
    }
    if (delayMs > 0) this.plans.push(plan)
    else this.runPlan(plan)
  }

  runPlan (plan: ModelPlan): void {
    for (const member of plan.owner.entries.filter(entry => plan.members.has(entry))) {
      if (plan.owner.status !== 'running') return
      if (member.plan !== plan) continue
      plan.members.delete(member)
      member.plan = undefined
      member.restarts++
      this.startEntry(member)
    }
  }

  escalate (supervisor: ModelSupervisor): void {
    supervisor.status = 'escalated'
    this.stopAll(supervisor)
    if (supervisor.ownerChild === undefined) this.rootEscalations++
    else this.exit(supervisor.ownerChild, true)
  }

  halt (entry: ModelChild): void {
    this.leavePlan(entry)
    if (!entry.running) return
    entry.running = false
    if (entry.nested !== undefined) this.stopSupervisor(entry.nested)
    entry.nested = undefined
  }

  stopSupervisor (supervisor: ModelSupervisor): void {
    if (supervisor.status !== 'running' && supervisor.status !== 'idle') return
    supervisor.status = 'stopped'
    this.stopAll(supervisor)
  }

  stopAll (supervisor: ModelSupervisor): void {
    for (const entry of [...supervisor.entries].reverse()) {
      this.halt(entry)
      entry.status = 'stopped'
    }
  }

  leavePlan (entry: ModelChild): void {
    const plan = entry.plan
    if (plan === undefined) return
    entry.plan = undefined
    plan.members.delete(entry)
    if (plan.members.size === 0) plan.live = false
  }

  remove (entry: ModelChild): void {
    const entries = entry.owner.entries
    entries.splice(entries.indexOf(entry), 1)
  }

  advance (ms: number): void {
    const targetMs = this.nowMs + ms
    for (;;) {
      this.plans = this.plans.filter(plan => plan.live)
      const due = this.plans.filter(plan => plan.dueMs <= targetMs)
        .sort((a, b) => a.dueMs - b.dueMs || a.seq - b.seq)[0]
      if (due === undefined) break
      this.plans.splice(this.plans.indexOf(due), 1)
      this.nowMs = due.dueMs
      this.runPlan(due)
    }
    this.nowMs = targetMs
  }

  pendingTimers (): number {
    return this.plans.filter(plan => plan.live).length
  }

  /** Running children of running supervisors, depth first in start order. */
  liveEntries (supervisor: ModelSupervisor = this.root, out: ModelChild[] = []): ModelChild[] {
    if (supervisor.status !== 'running') return out
    for (const entry of supervisor.entries) {
      out.push(entry)
      if (entry.running && entry.nested !== undefined) this.liveEntries(entry.nested, out)
    }
    return out
  }

  liveWorkers (): string[] {
    return this.liveEntries().filter(entry => entry.running && entry.config.type === 'worker').map(entry => entry.path)
  }
}

// --- the real thing -----------------------------------------------------------------------------

interface World {
  clock: VirtualClock
  root: Supervisor
  actors: Array<{ path: string, actor: AnyActorRef }>
  supervisors: Array<{ path: string, supervisor: Supervisor }>
  escalations: number
}

function specFor (world: World, path: string, config: NodeConfig): ChildSpec {
  if (config.type === 'worker') {
    return {
      id: path,
      kind: 'worker',
      restart: config.restart,
      start: (ctx) => {
        const actor = createActor(workerMachine, ctx.actorOptions)
        world.actors.push({ path, actor })
        return { kind: 'actor', actor }
      }
    }
  }
  return {
    id: path,
    kind: 'supervisor',
    restart: config.restart,
    start: (ctx) => {
      const supervisor = createSupervisor({ ...ctx.supervisorDefaults, ...supervisorOptions(world, path, config) })
      world.supervisors.push({ path, supervisor })
      return { kind: 'supervisor', supervisor }
    }
  }
}

function supervisorOptions (world: World, path: string, config: SupervisorConfig) {
  return {
    id: path,
    strategy: config.strategy,
    intensity: config.intensity,
    periodMs: config.periodMs,
    backoff: config.backoff,
    children: config.children.map((child, i) => specFor(world, `${path}/${i}`, child))
  }
}

function createWorld (config: SupervisorConfig): World {
  const world = { clock: new VirtualClock(), actors: [], supervisors: [], escalations: 0 } as unknown as World
  world.root = createSupervisor({
    clock: world.clock,
    random: createRandom(1),
    onEscalate: () => { world.escalations++ },
    ...supervisorOptions(world, 'root', config)
  })
  world.root.start()
  return world
}

/** What the live supervisors list as running, found only through the public API. */
function liveInWorld (world: World): { actors: Map<string, AnyActorRef>, supervisors: Set<Supervisor>, owners: Map<string, Supervisor> } {
  const actors = new Map<string, AnyActorRef>()
  const supervisors = new Set<Supervisor>()
  const owners = new Map<string, Supervisor>()
  const visit = (supervisor: Supervisor): void => {
    if (supervisor.status() !== 'running') return
    supervisors.add(supervisor)
    for (const info of supervisor.children()) {
      owners.set(info.id, supervisor)
      if (info.status !== 'running') continue
      const child = supervisor.child(info.id)
      assert.ok(child !== undefined, `${info.id} is listed running but has no incarnation`)
      if (child.kind === 'actor') actors.set(info.id, child.actor)
      else {
        assert.is(child.supervisor.status(), 'running', `nested ${info.id} listed running`)
        visit(child.supervisor)
      }
    }
  }
  visit(world.root)
  return { actors, supervisors, owners }
}

function compareSupervisor (model: ModelSupervisor, real: Supervisor, path: string): void {
  assert.is(real.status(), model.status, `status of ${path}`)
  const expected = model.entries.map(entry => [entry.path, entry.status, entry.restarts])
  assert.equal(real.children().map(info => [info.id, info.status, info.restarts]), expected, `children of ${path}`)
  for (const entry of model.entries) {
    if (!entry.running || entry.nested === undefined) continue
    const child = real.child(entry.path)
    assert.ok(child?.kind === 'supervisor', `${entry.path} is a running supervisor`)
    compareSupervisor(entry.nested, child.supervisor, entry.path)
  }
}

function checkInvariants (world: World, model: Model, step: string): void {
  compareSupervisor(model.root, world.root, `root after ${step}`)
  assert.is(world.escalations, model.rootEscalations, `root escalations after ${step}`)
  assert.is(world.clock.pendingCount, model.pendingTimers(), `pending restart timers after ${step}`)
  const creations = new Map<string, number>()
  for (const { path } of [...world.actors, ...world.supervisors]) creations.set(path, (creations.get(path) ?? 0) + 1)
  assert.equal(creations, model.creations, `creations per child after ${step}`)
  const live = liveInWorld(world)
  for (const { path, actor } of world.actors) {
    const status = actor.getSnapshot().status
    if (live.actors.get(path) === actor) assert.is(status, 'active', `live ${path} after ${step}`)
    else assert.ok(status === 'stopped' || status === 'error' || status === 'done', `orphan ${path} (${status}) after ${step}`)
  }
  for (const { path, supervisor } of world.supervisors) {
    const status = supervisor.status()
    if (live.supervisors.has(supervisor)) assert.is(status, 'running', `live supervisor ${path} after ${step}`)
    else assert.ok(status === 'stopped' || status === 'escalated', `orphan supervisor ${path} (${status}) after ${step}`)
  }
}

function apply (world: World, model: Model, operation: Operation): void {
  switch (operation.type) {
    case 'crash':
    case 'finish': {
      const workers = model.liveWorkers()
      assert.equal([...liveInWorld(world).actors.keys()], workers, 'live workers agree')
      if (workers.length === 0) return
      const path = workers[operation.pick % workers.length]!
      const entry = model.liveEntries().find(e => e.path === path)!
      liveInWorld(world).actors.get(path)!.send({ type: operation.type === 'crash' ? 'worker.crash' : 'worker.finish' })
      model.exit(entry, operation.type === 'crash')
      return
    }
    case 'stopChild': {
      const entries = model.liveEntries()
      if (entries.length === 0) return
      const entry = entries[operation.pick % entries.length]!
      assert.ok(liveInWorld(world).owners.get(entry.path)!.stopChild(entry.path))
      model.halt(entry)
      model.remove(entry)
      return
    }
    case 'advance':
      world.clock.advance(operation.ms)
      model.advance(operation.ms)
      return
    case 'stopRoot':
      void world.root.stop()
      model.stopSupervisor(model.root)
  }
}

test(`supervisor property: random trees and operations match the OTP model with no orphans (seed ${SEED}, ${NUM_RUNS} runs)`, () => {
  let steps = 0
  let liveSteps = 0
  let recreations = 0
  let escalations = 0
  fc.assert(
    fc.property(rootArb, fc.array(operationArb, { minLength: 10, maxLength: 40, size: 'max' }), (config, operations) => {
      const world = createWorld(config)
      const model = new Model(config)
      checkInvariants(world, model, 'start')
      const initialCreations = world.actors.length + world.supervisors.length
      operations.forEach((operation, i) => {
        apply(world, model, operation)
        checkInvariants(world, model, `step ${i} ${JSON.stringify(operation)}`)
        steps++
        if (world.root.status() === 'running') liveSteps++
      })
      recreations += world.actors.length + world.supervisors.length - initialCreations
      escalations += world.supervisors.filter(s => s.supervisor.status() === 'escalated').length + world.escalations
      apply(world, model, { type: 'stopRoot' })
      checkInvariants(world, model, 'final stop')
      assert.is(world.clock.pendingCount, 0)
      for (const { actor } of world.actors) assert.is.not(actor.getSnapshot().status, 'active')
    }),
    { seed: SEED, numRuns: NUM_RUNS }
  )
  // Guard against a vacuous run: the generated cases must actually restart and escalate.
  assert.ok(steps > NUM_RUNS * 5, `steps ${steps}`)
  assert.ok(liveSteps > steps / 2, `steps on a live tree ${liveSteps} of ${steps}`)
  assert.ok(recreations > NUM_RUNS * 2, `children created again ${recreations}`)
  assert.ok(escalations > NUM_RUNS / 5, `escalations ${escalations}`)
})

test.run()
