// Metrics port adapters: prom-client for real nodes (one registry per node, never the global one,
// since tests run many nodes in one process), and a plain in-memory table for the simulator.
import { Counter as PromCounter, Gauge as PromGauge, Registry } from 'prom-client'
import type { Counter, Gauge, MetricLabels, Metrics } from './ports.ts'

export interface PromMetrics extends Metrics {
  readonly registry: Registry
  /** Prometheus text exposition format. */
  render(): Promise<string>
}

export function createPromMetrics (options: { prefix?: string } = {}): PromMetrics {
  const registry = new Registry()
  const prefix = options.prefix ?? 'form_anycast_'
  const counters = new Map<string, PromCounter>()
  const gauges = new Map<string, PromGauge>()
  return {
    registry,
    render: async () => await registry.metrics(),
    counter (name, help, labelNames = []) {
      let counter = counters.get(name)
      if (counter === undefined) {
        counter = new PromCounter({ name: prefix + name, help, labelNames: [...labelNames], registers: [registry] })
        counters.set(name, counter)
      }
      const target = counter
      return { inc: (labels?: MetricLabels, value = 1) => { labels === undefined ? target.inc(value) : target.inc(labels, value) } }
    },
    gauge (name, help, labelNames = []) {
      let gauge = gauges.get(name)
      if (gauge === undefined) {
        gauge = new PromGauge({ name: prefix + name, help, labelNames: [...labelNames], registers: [registry] })
        gauges.set(name, gauge)
      }
      const target = gauge
      return { set: (value: number, labels?: MetricLabels) => { labels === undefined ? target.set(value) : target.set(labels, value) } }
    }
  }
}

export interface MemoryMetrics extends Metrics {
  /** Current value of a series, keyed `name` or `name{label="value",...}`. */
  value(name: string, labels?: MetricLabels): number
  snapshot(): Record<string, number>
}

function seriesKey (name: string, labels?: MetricLabels): string {
  if (labels === undefined) return name
  const parts = Object.keys(labels).sort().map((key) => `${key}=${JSON.stringify(labels[key])}`)
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`
}

export function createMemoryMetrics (): MemoryMetrics {
  const values = new Map<string, number>()
  return {
    counter (name): Counter {
      return { inc: (labels, value = 1) => { const key = seriesKey(name, labels); values.set(key, (values.get(key) ?? 0) + value) } }
    },
    gauge (name): Gauge {
      return { set: (value, labels) => { values.set(seriesKey(name, labels), value) } }
    },
    value: (name, labels) => values.get(seriesKey(name, labels)) ?? 0,
    snapshot: () => Object.fromEntries([...values.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
  }
}
