// The host's Prometheus text (/metrics) turned into per-stage rates: calls/s, failure rate
// and p99 over the last few seconds, from the difference of two scrapes.

const SAMPLE = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;
// seconds of history a rate is computed over (workers flush their counts every second)
const WINDOW_S = 5;
const KEEP_S = 120;

export function parse(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const found = SAMPLE.exec(line);
    if (!found) continue;
    const labels = {};
    for (const [, key, value] of (found[2] || "").matchAll(LABEL)) labels[key] = value.replace(/\\(.)/g, "$1");
    samples.push({ name: found[1], labels, value: Number(found[3]) });
  }
  return samples;
}

function stageTotals(samples) {
  const stages = {};
  const of = (name) => (stages[name] ||= { calls: 0, failed: 0, buckets: {} });
  for (const { name, labels, value } of samples) {
    if (!labels.stage) continue;
    if (name === "mwhost_stage_calls_total") {
      of(labels.stage).calls += value;
      if (labels.outcome === "failed") of(labels.stage).failed += value;
    } else if (name === "mwhost_stage_call_duration_seconds_bucket") {
      const buckets = of(labels.stage).buckets;
      buckets[labels.le] = (buckets[labels.le] || 0) + value;
    }
  }
  return stages;
}

export function workers(samples) {
  return samples.filter((s) => s.name === "mwhost_pipeline_generation" && s.labels.pid)
    .map((s) => ({ pid: Number(s.labels.pid), generation: s.value }))
    .sort((a, b) => a.pid - b.pid);
}

// The quantile q of a cumulative histogram {le: count} (the bucket's upper bound, like
// Prometheus' histogram_quantile without interpolation).
export function quantile(buckets, q) {
  const bounds = Object.keys(buckets).map((le) => [le === "+Inf" ? Infinity : Number(le), buckets[le]])
    .sort((a, b) => a[0] - b[0]);
  const total = bounds.length ? bounds[bounds.length - 1][1] : 0;
  if (total <= 0) return null;
  for (const [bound, count] of bounds) {
    if (count >= q * total) return bound;
  }
  return null;
}

export class StageRates {
  constructor() {
    this.history = [];
  }

  add(samples, at = performance.now() / 1000) {
    this.history.push({ at, stages: stageTotals(samples) });
    while (this.history.length > 2 && at - this.history[0].at > KEEP_S) this.history.shift();
  }

  // {calls_per_s, failure_rate, p99_s} of stage `name` over the last WINDOW_S seconds
  rates(name) {
    const now = this.history[this.history.length - 1];
    const then = [...this.history].reverse().find((h) => now.at - h.at >= WINDOW_S) || this.history[0];
    if (!now || !then || now === then) return null;
    const a = then.stages[name] || { calls: 0, failed: 0, buckets: {} };
    const b = now.stages[name];
    if (!b) return null;
    // NOTE: a restarted worker's counts leave the totals; a negative difference means that
    const calls = Math.max(0, b.calls - a.calls);
    const failed = Math.max(0, b.failed - a.failed);
    const buckets = {};
    for (const le of Object.keys(b.buckets)) buckets[le] = Math.max(0, b.buckets[le] - (a.buckets[le] || 0));
    return {
      calls_per_s: calls / (now.at - then.at),
      failure_rate: calls ? failed / calls : null,
      p99_s: calls ? quantile(buckets, 0.99) : null,
    };
  }

  // calls/s of stage `name` between consecutive scrapes, oldest first (a sparkline's points)
  series(name) {
    const points = [];
    for (let i = 1; i < this.history.length; i++) {
      const a = this.history[i - 1].stages[name];
      const b = this.history[i].stages[name];
      const dt = this.history[i].at - this.history[i - 1].at;
      points.push(a && b && dt > 0 ? Math.max(0, b.calls - a.calls) / dt : 0);
    }
    return points.slice(-60);
  }
}
