// The debugger page: every view shows the state at one record index (`at`). The slider and the step
// buttons move it; the URL hash (#i=…&t=…&node=…&actor=…, and view=sequence|map, window, lane)
// records it, so a link reopens the same instant, actor and view. After each render,
// <body data-view data-at data-actor> say what is on screen (tests wait on it).
import { drawChart, highlight } from './chart-view.js'
import { drawSequence } from './sequence-view.js'
import { drawMap } from './map-view.js'

const $ = (id) => document.getElementById(id)
const view = { meta: undefined, at: 0, node: undefined, actor: undefined, follow: true, pane: 'chart' }
const charts = new Map()
let rendering = false
let pending = false

async function api (path) {
  const response = await fetch(path)
  const body = await response.json()
  if (!response.ok) throw new Error(body.error ?? `${path}: HTTP ${response.status}`)
  return body
}

/** 'idle'; {opened: 'openSent'} → 'opened.openSent'; parallel regions in parentheses. */
export function stateText (value) {
  if (value === undefined || value === null) return '—'
  if (typeof value === 'string') return value
  const entries = Object.entries(value)
  const parts = entries.map(([key, inner]) => typeof inner === 'string' ? `${key}.${inner}` : `${key}.${stateText(inner)}`)
  return entries.length === 1 ? parts[0] : `(${parts.join(', ')})`
}

function readHash () {
  const params = new URLSearchParams(location.hash.slice(1))
  return {
    i: params.get('i'),
    t: params.get('t'),
    node: params.get('node') ?? undefined,
    actor: params.get('actor') ?? undefined,
    pane: ['sequence', 'map'].includes(params.get('view')) ? params.get('view') : 'chart',
    window: params.get('window'),
    lane: params.get('lane')
  }
}

function writeHash (record) {
  const params = new URLSearchParams()
  params.set('i', String(view.at))
  if (record !== undefined) params.set('t', String(record.t))
  if (view.node !== undefined) params.set('node', view.node)
  if (view.actor !== undefined) params.set('actor', view.actor)
  if (view.pane === 'map') params.set('view', 'map')
  if (view.pane === 'sequence') {
    params.set('view', 'sequence')
    params.set('window', $('sequence-window').value)
    if ($('sequence-node').value !== '') params.set('lane', $('sequence-node').value)
  }
  history.replaceState(null, '', `#${params}`)
}

async function loadMeta () {
  view.meta = await api('/api/meta')
  const { meta } = view
  $('source').textContent = `${meta.mode}: ${meta.source} · ${meta.nodes.length} nodes · ${meta.actors} actors · ${meta.end - meta.first} records`
  const slider = $('slider')
  slider.min = String(meta.first)
  slider.max = String(Math.max(meta.first, meta.end - 1))
  $('follow-label').hidden = meta.mode !== 'live'
  fillSelect($('filter-node'), meta.nodes.map((node) => node.name))
  fillSelect($('sequence-node'), meta.nodes.map((node) => node.name))
  fillSelect($('filter-actor'), meta.kinds)
  renderNodes()
}

function fillSelect (select, values) {
  const known = new Set([...select.options].map((option) => option.value))
  for (const value of values) {
    if (known.has(value)) continue
    const option = document.createElement('option')
    option.value = option.textContent = value
    select.appendChild(option)
  }
}

function renderNodes () {
  const list = $('nodes')
  list.replaceChildren()
  const located = drawMap($('world-map'), view.meta.nodes, view.node, selectNode)
  $('world-map').style.display = located === 0 ? 'none' : ''
  drawMap($('world-map-large'), view.meta.nodes, view.node, selectNode, { radius: 2.5, labels: located <= 30 })
  $('map-summary').textContent = located === 0
    ? 'no node in this trace says where it is (a node\'s config location)'
    : `${located} of ${view.meta.nodes.length} nodes located · equirectangular, graticule every 30° · click a node to select it`
  for (const node of view.meta.nodes) {
    const item = document.createElement('li')
    item.textContent = `${node.name} (${node.actors})`
    item.dataset.node = node.name
    item.classList.toggle('selected', node.name === view.node)
    item.addEventListener('click', () => selectNode(node.name))
    list.appendChild(item)
  }
}

function selectNode (name) {
  view.node = name
  view.actor = undefined
  renderNodes()
  requestRender()
}

function selectActor (systemId) {
  view.actor = systemId
  requestRender()
}

export function goto (at) {
  const { meta } = view
  view.at = Math.max(meta.first, Math.min(Number(at), meta.end - 1))
  $('slider').value = String(view.at)
  requestRender()
}

function requestRender () {
  if (rendering) { pending = true; return }
  rendering = true
  render().catch((error) => { $('actor-state').textContent = `error: ${error.message}` }).finally(() => {
    rendering = false
    if (pending) { pending = false; requestRender() }
  })
}

async function render () {
  const at = view.at
  const filters = ['node', 'actor', 'type'].map((field) => [field, $(`filter-${field}`).value]).filter(([, value]) => value !== '')
  const query = new URLSearchParams([['at', String(at)], ['limit', '200'], ...filters])
  const [nodeView, actorView, log] = await Promise.all([
    view.node === undefined ? undefined : api(`/api/node?name=${encodeURIComponent(view.node)}&at=${at}`),
    view.node === undefined || view.actor === undefined ? undefined : api(`/api/actor?node=${encodeURIComponent(view.node)}&id=${encodeURIComponent(view.actor)}&at=${at}`),
    api(`/api/events?${query}`)
  ])
  const record = nodeView?.record ?? actorView?.record ?? log.events[log.events.length - 1]
  $('clock').textContent = `#${at} · t ${record === undefined ? '—' : (record.t / 1000).toFixed(3)} s`
  renderTree(nodeView)
  if (view.pane === 'sequence') await renderSequence(at)
  else if (view.pane === 'chart') await renderActor(actorView?.actor)
  renderLog(log.events, at)
  writeHash(record)
  document.body.dataset.view = view.pane
  document.body.dataset.at = String(at)
  document.body.dataset.actor = view.actor ?? ''
}

function renderTree (nodeView) {
  const tree = $('tree')
  tree.replaceChildren()
  $('tree-node').textContent = view.node ?? '(select a node)'
  if (nodeView === undefined) return
  const byParent = new Map()
  const actorIds = new Set(nodeView.actors.map((actor) => actor.systemId))
  for (const actor of nodeView.actors) {
    const parent = actor.parent ?? 'root'
    if (!byParent.has(parent)) byParent.set(parent, [])
    byParent.get(parent).push(actor)
  }
  const group = (parent, container) => {
    const label = document.createElement('div')
    label.className = 'tree-supervisor'
    label.textContent = parent
    container.appendChild(label)
    const children = document.createElement('div')
    children.className = 'tree-group'
    for (const actor of byParent.get(parent) ?? []) {
      const row = document.createElement('div')
      row.className = `tree-actor ${actor.status === 'stopped' ? 'stopped' : ''}`
      row.classList.toggle('selected', actor.systemId === view.actor)
      row.dataset.actor = actor.systemId
      row.dataset.state = stateText(actor.state)
      row.innerHTML = '<span class="name"></span><span class="state"></span>'
      row.querySelector('.name').textContent = actor.systemId
      row.querySelector('.state').textContent = stateText(actor.state)
      row.addEventListener('click', () => selectActor(actor.systemId))
      children.appendChild(row)
    }
    // Supervisors are not actors of their own in the trace: they appear as the parents named.
    if (parent === 'root') for (const other of byParent.keys()) if (other !== 'root' && !actorIds.has(other)) group(other, children)
    container.appendChild(children)
  }
  if (byParent.has('root') || byParent.size > 0) group('root', tree)
}

async function chartFor (kind) {
  if (!charts.has(kind)) charts.set(kind, api(`/api/chart/${kind}`).then(async (chart) => ({ chart, drawn: await drawChart(chart) })))
  return await charts.get(kind)
}

async function renderActor (actor) {
  const pane = $('chart')
  $('chart-title').textContent = actor === undefined ? '(select an actor)' : `${actor.actor} · ${actor.systemId}`
  if (actor === undefined) { pane.replaceChildren(); $('actor-state').textContent = ''; return }
  let known
  try { known = await chartFor(actor.actor) } catch { known = undefined }
  const last = actor.changedAt === undefined ? '' : ` · last: ${stateText(actor.previous)} → ${stateText(actor.state)} on ${actor.event ?? '?'} at #${actor.changedAt}`
  $('actor-state').textContent = `${actor.status}: ${stateText(actor.state)}${last}`
  if (known === undefined) { pane.textContent = `no chart for ${actor.actor}`; return }
  if (pane.firstChild !== known.drawn.svg) pane.replaceChildren(known.drawn.svg)
  const lit = highlight(known.drawn, known.chart.root.id, actor.status === 'running' ? actor.state : undefined, actor.previous, actor.event)
  known.drawn.svg.dataset.current = lit.join(' ')
}

async function renderSequence (at) {
  // What was asked, not what the controls say when the answer comes: they may have moved since.
  const lane = $('sequence-node').value
  const query = new URLSearchParams([['at', String(at)], ['windowMs', $('sequence-window').value]])
  if (lane !== '') query.set('node', lane)
  const sequence = await api(`/api/sequence?${query}`)
  const pane = $('sequence')
  const svg = drawSequence(sequence, pane.clientHeight, (index) => { stopFollowing(); goto(index) })
  svg.dataset.at = String(at)
  svg.dataset.window = String(sequence.tTo - sequence.tFrom)
  svg.dataset.lane = lane
  pane.replaceChildren(svg)
  const exact = sequence.messages.filter((message) => !message.estimated).length
  $('sequence-summary').textContent = `t ${(sequence.tFrom / 1000).toFixed(3)}–${(sequence.tTo / 1000).toFixed(3)} s: ${sequence.messages.length} messages (${exact} with recorded departure), ${sequence.marks.length} gossip publishes, ${sequence.lanes.length} nodes${sequence.truncated ? ' · window truncated to the newest' : ''}`
}

function setPane (pane) {
  view.pane = pane
  $('chart-view').hidden = pane !== 'chart'
  $('sequence-view').hidden = pane !== 'sequence'
  $('map-view').hidden = pane !== 'map'
  for (const name of ['chart', 'sequence', 'map']) $(`show-${name}`).classList.toggle('active', pane === name)
}

function showPane (pane) {
  setPane(pane)
  requestRender()
}

function renderLog (events, at) {
  const body = $('events').tBodies[0]
  const rows = events.map((event) => {
    const row = document.createElement('tr')
    row.classList.toggle('current', event.i === at)
    for (const text of [event.i, event.t, event.node, event.systemId, event.kind, event.event ?? '', event.state === undefined ? '' : stateText(event.state)]) {
      const cell = document.createElement('td')
      cell.textContent = String(text)
      row.appendChild(cell)
    }
    row.addEventListener('click', () => { view.follow = false; $('follow').checked = false; goto(event.i) })
    return row
  })
  body.replaceChildren(...rows)
  body.lastElementChild?.scrollIntoView({ block: 'nearest' })
}

async function actorStep (direction) {
  if (view.node === undefined || view.actor === undefined) return
  const { actor } = await api(`/api/actor?node=${encodeURIComponent(view.node)}&id=${encodeURIComponent(view.actor)}&at=${view.at}`)
  const target = direction < 0 ? (actor.previousChange === view.at ? undefined : actor.previousChange) : actor.nextChange
  if (direction < 0 && actor.previousChange === view.at) {
    const before = await api(`/api/actor?node=${encodeURIComponent(view.node)}&id=${encodeURIComponent(view.actor)}&at=${view.at - 1}`)
    if (before.actor.previousChange !== undefined) goto(before.actor.previousChange)
  } else if (target !== undefined) goto(target)
}

function stopFollowing () { view.follow = false; $('follow').checked = false }

async function start () {
  await loadMeta()
  const hash = readHash()
  view.node = hash.node
  view.actor = hash.actor
  if (hash.window !== null && [...$('sequence-window').options].some((option) => option.value === hash.window)) $('sequence-window').value = hash.window
  if (hash.lane !== null && hash.lane !== undefined) $('sequence-node').value = hash.lane
  let at = view.meta.end - 1
  if (hash.i !== null) at = Number(hash.i)
  else if (hash.t !== null) at = (await api(`/api/index?t=${encodeURIComponent(hash.t)}`)).at
  if (hash.i !== null || hash.t !== null) stopFollowing()
  view.follow = view.follow && view.meta.mode === 'live'
  renderNodes()
  $('slider').addEventListener('input', (event) => { stopFollowing(); goto(event.target.value) })
  $('step-back').addEventListener('click', () => { stopFollowing(); goto(view.at - 1) })
  $('step-forward').addEventListener('click', () => { stopFollowing(); goto(view.at + 1) })
  $('actor-back').addEventListener('click', () => { stopFollowing(); void actorStep(-1) })
  $('actor-forward').addEventListener('click', () => { stopFollowing(); void actorStep(1) })
  $('follow').addEventListener('change', (event) => { view.follow = event.target.checked; if (view.follow) goto(view.meta.end - 1) })
  $('show-chart').addEventListener('click', () => showPane('chart'))
  $('show-sequence').addEventListener('click', () => showPane('sequence'))
  $('show-map').addEventListener('click', () => showPane('map'))
  for (const id of ['sequence-window', 'sequence-node']) $(id).addEventListener('input', () => requestRender())
  for (const field of ['node', 'actor', 'type']) $(`filter-${field}`).addEventListener('input', () => requestRender())
  document.addEventListener('keydown', (event) => {
    if (event.target instanceof HTMLInputElement && event.target.type !== 'range') return
    if (event.key === 'ArrowLeft') { stopFollowing(); goto(view.at - 1); event.preventDefault() }
    if (event.key === 'ArrowRight') { stopFollowing(); goto(view.at + 1); event.preventDefault() }
  })
  if (view.meta.mode === 'live') setInterval(() => { void poll() }, 1000)
  setPane(hash.pane)
  goto(at)
}

async function poll () {
  await loadMeta()
  if (view.follow) goto(view.meta.end - 1)
}

window.inspector = { goto, selectNode, selectActor, showPane, get at () { return view.at } }
start().catch((error) => { document.body.textContent = `form-anycast inspect: ${error.message}` })
