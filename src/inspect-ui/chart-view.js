// Draws a chart (the JSON of `form-anycast chart --format json`) as SVG laid out by elkjs, once per
// actor kind; highlighting a state afterwards only changes classes, so stepping through a trace
// never lays out again.
const SVG = 'http://www.w3.org/2000/svg'
const ANY_STATE = '__any'
const LABEL_HEIGHT = 22

const textWidth = (text, size) => Math.ceil(text.length * size * 0.62) + 16

/** ELK graph: states nest as in the machine, edges live at the root with absolute coordinates. */
function elkGraph (chart) {
  const edges = []
  let edgeCount = 0
  const addEdges = (source, transitions) => {
    for (const transition of transitions) {
      for (const target of transition.targets) {
        const text = transition.guard === undefined ? transition.label : `${transition.label} [${transition.guard}]`
        edges.push({ id: `e${edgeCount++}`, sources: [source], targets: [target], labels: [{ text, width: textWidth(text, 10), height: 14 }], event: transition.event })
      }
    }
  }
  const node = (state) => {
    addEdges(state.id, state.transitions)
    const elk = { id: state.id, labels: [{ text: state.key }], type: state.type }
    if (state.states.length === 0) {
      elk.width = textWidth(state.key, 12)
      elk.height = 30
      return elk
    }
    elk.children = state.states.map(node)
    if (state.initial !== undefined) {
      const initial = `${state.id}.__initial`
      elk.children.unshift({ id: initial, width: 10, height: 10, type: 'initial', labels: [] })
      edges.push({ id: `e${edgeCount++}`, sources: [initial], targets: [state.initial], labels: [], event: '' })
    }
    elk.layoutOptions = { 'elk.padding': `[top=${LABEL_HEIGHT + 6},left=10,bottom=10,right=10]`, 'elk.direction': state.type === 'parallel' ? 'DOWN' : 'RIGHT' }
    return elk
  }
  const children = chart.root.states.map(node)
  if (chart.root.initial !== undefined) {
    children.unshift({ id: '__initial', width: 10, height: 10, type: 'initial', labels: [] })
    edges.push({ id: `e${edgeCount++}`, sources: ['__initial'], targets: [chart.root.initial], labels: [], event: '' })
  }
  if (chart.root.transitions.some((transition) => transition.targets.length > 0)) {
    children.push({ id: ANY_STATE, width: 90, height: 30, type: 'any', labels: [{ text: '(any state)' }] })
    addEdges(ANY_STATE, chart.root.transitions)
  }
  return {
    id: chart.root.id,
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.json.edgeCoords': 'ROOT',
      'elk.json.shapeCoords': 'ROOT',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.layered.spacing.nodeNodeBetweenLayers': '40',
      'elk.spacing.edgeLabel': '2'
    },
    children,
    edges
  }
}

function element (name, attributes, parent) {
  const node = document.createElementNS(SVG, name)
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value))
  parent?.appendChild(node)
  return node
}

/** Lays out and draws a chart; returns { svg, states: Map<id, g>, edges: [{ g, source, target, event }] }. */
export async function drawChart (chart) {
  // eslint-disable-next-line no-undef
  const elk = new ELK()
  const graph = elkGraph(chart)
  const layout = await elk.layout(graph)
  const svg = element('svg', { width: layout.width + 20, height: layout.height + 20, viewBox: `-10 -10 ${layout.width + 20} ${layout.height + 20}`, 'data-kind': chart.kind })
  const defs = element('defs', {}, svg)
  const marker = element('marker', { id: `arrow-${chart.kind}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs)
  element('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#7a8596' }, marker)
  const states = new Map()
  const drawNode = (node) => {
    if (node.type === 'initial') {
      element('circle', { class: 'initial', cx: node.x + 5, cy: node.y + 5, r: 5 }, svg)
      return
    }
    const g = element('g', { class: 'state', 'data-state': node.id }, svg)
    const compound = node.children !== undefined
    element('rect', { class: `state-box ${compound ? (node.type === 'parallel' ? 'parallel' : 'compound') : ''}`, x: node.x, y: node.y, width: node.width, height: node.height, rx: 8 }, g)
    const label = node.labels[0]?.text ?? ''
    const text = element('text', compound ? { x: node.x + 8, y: node.y + 16 } : { x: node.x + node.width / 2, y: node.y + 19, 'text-anchor': 'middle' }, g)
    text.textContent = node.type === 'parallel' ? `${label} ∥` : label
    states.set(node.id, g)
    for (const child of node.children ?? []) drawNode(child)
  }
  for (const node of layout.children) drawNode(node)
  const edges = []
  for (const edge of layout.edges) {
    const g = element('g', { class: 'edge', 'data-event': edge.event }, svg)
    for (const section of edge.sections ?? []) {
      const points = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint]
      element('path', { d: points.map((point, index) => `${index === 0 ? 'M' : 'L'} ${point.x} ${point.y}`).join(' '), 'marker-end': `url(#arrow-${chart.kind})` }, g)
    }
    for (const label of edge.labels ?? []) {
      const text = element('text', { x: label.x, y: label.y + 10 }, g)
      text.textContent = label.text
    }
    edges.push({ g, source: edge.sources[0], target: edge.targets[0], event: edge.event })
  }
  return { svg, states, edges }
}

/** Ids of the active states for a state value: 'idle' → [root.idle]; {opened: 'openSent'} → [root.opened, root.opened.openSent]. */
export function activeIds (rootId, value) {
  const out = []
  const visit = (prefix, node) => {
    if (typeof node === 'string') { out.push(`${prefix}.${node}`); return }
    if (node === null || typeof node !== 'object') return
    for (const [key, inner] of Object.entries(node)) {
      out.push(`${prefix}.${key}`)
      visit(`${prefix}.${key}`, inner)
    }
  }
  visit(rootId, value)
  return out
}

/** Lights the current states; marks the states left and the transition taken by the last change. */
export function highlight (view, rootId, current, previous, event) {
  const active = new Set(current === undefined ? [] : activeIds(rootId, current))
  const before = new Set(previous === undefined ? [] : activeIds(rootId, previous))
  for (const [id, g] of view.states) {
    g.classList.toggle('active', active.has(id))
    g.classList.toggle('previous', before.has(id) && !active.has(id))
  }
  let marked = false
  for (const edge of view.edges) {
    const last = !marked && event !== undefined && edge.event === event && (before.has(edge.source) || edge.source === '__any') && active.has(edge.target)
    edge.g.classList.toggle('last', last)
    if (last) marked = true
  }
  return [...active]
}
