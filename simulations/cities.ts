// The bundled city dataset (simulations/data/cities.json: GeoNames, CC BY 4.0; see
// simulations/data/README.md) and population-weighted draws from it, for generated scenario nodes
// and clients. Read on demand, never cached in module state.
import { readFileSync } from 'node:fs'
import type { Random } from '../src/runtime/ports.ts'

export interface City {
  /** kebab-case, unique in the dataset: node ids are `<id>-<k>`. */
  id: string
  name: string
  /** ISO 3166-1 alpha-2. */
  country: string
  region: CityRegion
  lat: number
  lon: number
  population: number
}

/** af Africa, ap Asia, eu Europe, me Middle East, na North/Central America, oc Oceania, sa South America. */
export const CITY_REGIONS = ['af', 'ap', 'eu', 'me', 'na', 'oc', 'sa'] as const
export type CityRegion = typeof CITY_REGIONS[number]

const DATASET = new URL('./data/cities.json', import.meta.url)

/** Every city of the dataset, most populous first. */
export function loadCities (): City[] {
  return JSON.parse(readFileSync(DATASET, 'utf8')) as City[]
}

/** Cities of the given regions (all when `regions` is undefined), most populous first. */
export function citiesIn (regions?: readonly string[]): City[] {
  const cities = loadCities()
  return regions === undefined ? cities : cities.filter((city) => regions.includes(city.region))
}

/** Draws cities with probability proportional to population (cumulative weights, binary search). */
export function createCitySampler (cities: readonly City[]): (random: Random) => City {
  if (cities.length === 0) throw new RangeError('createCitySampler: no cities to draw from')
  const cumulative: number[] = []
  let total = 0
  for (const city of cities) {
    total += city.population
    cumulative.push(total)
  }
  return (random) => {
    const target = random.next() * total
    let low = 0
    let high = cumulative.length - 1
    while (low < high) {
      const middle = (low + high) >> 1
      if (cumulative[middle]! > target) high = middle
      else low = middle + 1
    }
    return cities[low]!
  }
}
