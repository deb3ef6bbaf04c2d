// The world map: nodes placed by latitude and longitude in an equirectangular projection (x = lon,
// y = -lat in a -180..180 × -90..90 viewBox), over a graticule every 30°. No tiles and no coastline
// data: the debugger runs offline and the map only has to show where nodes are relative to each other.
import { element } from './svg.js'

const GRATICULE_STEP = 30

/** x, y in the map's viewBox for a location. */
export function project (location) {
  return { x: location.lon, y: -location.lat }
}

/**
 * Fills `svg` with the graticule and one circle per located node (data-node, data-lat, data-lon);
 * clicking a circle calls onPick(name). `labels` writes node names beside the circles.
 */
export function drawMap (svg, nodes, selected, onPick, { radius = 4, labels = false } = {}) {
  svg.replaceChildren()
  svg.setAttribute('viewBox', '-180 -90 360 180')
  const grid = element('g', { class: 'graticule' })
  for (let lon = -180; lon <= 180; lon += GRATICULE_STEP) grid.appendChild(element('line', { x1: lon, y1: -90, x2: lon, y2: 90 }))
  for (let lat = -90; lat <= 90; lat += GRATICULE_STEP) grid.appendChild(element('line', { x1: -180, y1: -lat, x2: 180, y2: -lat, class: lat === 0 ? 'equator' : '' }))
  svg.appendChild(grid)
  // The selected node last, so it is drawn on top of its neighbours in the same city.
  const located = nodes.filter((node) => node.location !== undefined).sort((a, b) => Number(a.name === selected) - Number(b.name === selected))
  for (const node of located) {
    const { x, y } = project(node.location)
    const group = element('g', { class: `map-node${node.name === selected ? ' selected' : ''}` })
    const dot = element('circle', { cx: x, cy: y, r: radius, 'data-node': node.name, 'data-lat': node.location.lat, 'data-lon': node.location.lon })
    dot.classList.toggle('selected', node.name === selected)
    dot.appendChild(element('title', {}, `${node.name} (${node.location.lat.toFixed(2)}, ${node.location.lon.toFixed(2)})`))
    dot.addEventListener('click', () => onPick(node.name))
    group.appendChild(dot)
    if (labels) group.appendChild(element('text', { x: x + radius + 1, y: y + radius / 2 }, node.name))
    svg.appendChild(group)
  }
  return located.length
}
