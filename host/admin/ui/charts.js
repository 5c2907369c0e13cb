// Small SVG charts drawn by hand: a sparkline, grouped bars (candidate against baseline per
// step) and a rollout's step progress. Colours come from classes in style.css.

const NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function sparkline(values, width = 120, height = 24) {
  const max = Math.max(1e-9, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
  return svg("svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                      "aria-label": "calls per second, last two minutes" },
    points.length > 1 ? svg("polyline", { points: points.join(" ") }) : null);
}

// groups: [{label, candidate, baseline}]; one chart of one metric.
export function groupedBars(title, groups, format = (v) => String(v)) {
  const width = 280, height = 150, top = 30, bottom = 22, left = 8;
  const values = groups.flatMap((g) => [g.candidate, g.baseline]).filter((v) => typeof v === "number");
  const max = Math.max(1e-9, ...values);
  const slot = (width - left) / Math.max(1, groups.length);
  const bar = Math.min(28, slot / 2.6);
  const scale = (v) => ((typeof v === "number" ? v : 0) / max) * (height - top - bottom);
  const parts = [svg("text", { x: 4, y: 14, class: "chart-title" }, title)];
  groups.forEach((g, i) => {
    const x = left + i * slot + slot / 2;
    [["candidate", -bar - 1], ["baseline", 1]].forEach(([variant, dx]) => {
      const value = g[variant];
      const barHeight = scale(value);
      parts.push(svg("rect", { x: (x + dx).toFixed(1), y: (height - bottom - barHeight).toFixed(1), width: bar.toFixed(1),
                               height: Math.max(0.5, barHeight).toFixed(1), class: `bar ${variant}` },
        svg("title", {}, `${g.label} ${variant}: ${typeof value === "number" ? format(value) : "—"}`)));
      if (typeof value === "number") {
        parts.push(svg("text", { x: (x + dx + bar / 2).toFixed(1), y: (height - bottom - barHeight - 3).toFixed(1),
                                 class: "value", "text-anchor": "middle" }, format(value)));
      }
    });
    parts.push(svg("text", { x: x.toFixed(1), y: height - 6, class: "axis", "text-anchor": "middle" }, g.label));
  });
  parts.push(svg("line", { x1: 0, x2: width, y1: height - bottom, y2: height - bottom, class: "baseline-axis" }));
  return svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                      "aria-label": title }, parts);
}

// steps: [1, 5, 25, 50, 100]; current: index; state: running|waiting|paused|promoted|aborted
export function stepProgress(steps, current, state) {
  const width = 420, height = 46, pad = 14;
  const gap = steps.length > 1 ? (width - 2 * pad) / (steps.length - 1) : 0;
  const parts = [svg("line", { x1: pad, x2: width - pad, y1: 18, y2: 18, class: "track" })];
  if (steps.length > 1) {
    parts.push(svg("line", { x1: pad, x2: pad + gap * current, y1: 18, y2: 18, class: `track done ${state}` }));
  }
  steps.forEach((percent, i) => {
    const x = pad + i * gap;
    const kind = i < current || state === "promoted" ? "done" : i === current ? `current ${state}` : "todo";
    parts.push(svg("circle", { cx: x, cy: 18, r: i === current ? 8 : 6, class: `step ${kind}` }));
    parts.push(svg("text", { x, y: 42, class: "axis", "text-anchor": "middle" }, `${percent}%`));
  });
  return svg("svg", { class: "progress", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                      "aria-label": `step ${current + 1} of ${steps.length}` }, parts);
}
