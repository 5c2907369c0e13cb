// Pipeline view: the stages in order with their version, ABI, origin, policy and limits, and
// live calls/s, failure rate and p99 per stage from /metrics; drag a row (or use its arrows)
// to reorder.

import { call, get } from "./api.js";
import { sparkline } from "./charts.js";
import { h, millis, percent, problemBox, replace, short } from "./dom.js";
import { StageRates, parse } from "./metrics.js";

// members of a stage entry that are not limits (shown in their own columns or elsewhere)
const NOT_LIMITS = new Set(["name", "sha256", "config", "origin", "position", "kept_versions", "on_error", "abi",
                            "active"]);

export function limitsText(entry) {
  return Object.entries(entry).filter(([key, value]) => !NOT_LIMITS.has(key) && typeof value !== "object")
    .map(([key, value]) => `${key}=${value}`).join(" ");
}

export class PipelineView {
  constructor(app) {
    this.app = app;
    this.rates = new StageRates();
    this.dragging = null;
  }

  mount(root) {
    this.summary = h("p", { class: "summary", id: "pipeline-summary" });
    this.message = h("div", { id: "pipeline-message" });
    this.body = h("tbody");
    this.table = h("table", { id: "pipeline-table", class: "grid" },
      h("thead", {}, h("tr", {}, ["", "#", "stage", "version", "ABI", "origin", "policy", "limits",
                                  "calls/s", "", "failures", "p99", "rollout", "move"].map((t) => h("th", { text: t })))),
      this.body);
    replace(root, h("h1", { text: "Pipeline" }), this.summary, this.message, this.table,
      h("p", { class: "hint", text: "Drag a row (or use its arrows) to reorder the stages; the change is one admin "
                                   + "write (PUT /_admin/pipeline/order)." }));
  }

  async refresh() {
    if (this.dragging) return;  // NOTE: redrawing the rows would drop the row being dragged
    const [pipeline, text] = await Promise.all([get("/_admin/pipeline"), get("/metrics").catch(() => "")]);
    this.app.pipeline = pipeline;
    this.rates.add(parse(text));
    if (this.dragging) return;
    replace(this.summary, `generation ${pipeline.generation} · served by worker ${pipeline.pid} at generation `
      + `${pipeline.served_generation} · ${pipeline.stages.length} stages · source ${pipeline.source || "—"}`);
    const rollouts = Object.fromEntries((pipeline.rollouts || []).map((r) => [r.stage, r]));
    replace(this.body, pipeline.stages.map((entry, i) => this.row(entry, i, pipeline.stages.length, rollouts[entry.name])));
  }

  row(entry, index, count, rollout) {
    const rates = this.rates.rates(entry.name);
    const row = h("tr", { draggable: "true", dataset: { stage: entry.name } },
      h("td", { class: "handle", title: "drag to reorder", text: "⠿" }),
      h("td", { text: entry.position ?? index }),
      h("td", {}, h("a", { href: `#/stage/${encodeURIComponent(entry.name)}`, text: entry.name })),
      h("td", { class: "mono", title: entry.sha256, text: short(entry.sha256) }),
      h("td", { class: "abi", text: entry.abi || "v1" }),
      h("td", { text: entry.origin || "—" }),
      h("td", { text: entry.on_error || "—" }),
      h("td", { class: "limits", text: limitsText(entry) }),
      h("td", { class: "num calls", text: rates ? rates.calls_per_s.toFixed(1) : "…" }),
      h("td", {}, sparkline(this.rates.series(entry.name))),
      h("td", { class: "num failures", text: rates ? percent(rates.failure_rate) : "…" }),
      h("td", { class: "num p99", text: rates ? millis(rates.p99_s) : "…" }),
      h("td", {}, rollout ? h("a", { href: `#/rollouts/${encodeURIComponent(entry.name)}`, class: `badge ${rollout.state}`,
                                     text: `${rollout.kind} ${rollout.percent}% ${rollout.state}` }) : ""),
      h("td", { class: "arrows" },
        h("button", { type: "button", class: "quiet", title: `move ${entry.name} up`, disabled: index === 0,
                      onclick: () => this.move(entry.name, -1), text: "↑" }),
        h("button", { type: "button", class: "quiet", title: `move ${entry.name} down`, disabled: index === count - 1,
                      onclick: () => this.move(entry.name, 1), text: "↓" })));
    row.addEventListener("dragstart", (event) => {
      this.dragging = entry.name;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", entry.name);
      row.classList.add("dragging");
    });
    row.addEventListener("dragend", () => {
      this.dragging = null;
      row.classList.remove("dragging");
    });
    row.addEventListener("dragover", (event) => {
      event.preventDefault();
      row.classList.add("drop-target");
    });
    row.addEventListener("dragleave", () => row.classList.remove("drop-target"));
    row.addEventListener("drop", (event) => {
      event.preventDefault();
      row.classList.remove("drop-target");
      const moved = event.dataTransfer.getData("text/plain") || this.dragging;
      this.dragging = null;
      if (moved && moved !== entry.name) this.reorder(this.order(), moved, entry.name);
    });
    return row;
  }

  order() {
    return this.app.pipeline.stages.map((entry) => entry.name);
  }

  move(name, delta) {
    const order = this.order();
    const from = order.indexOf(name);
    const target = order[from + delta];
    if (target !== undefined) this.reorder(order, name, target);
  }

  async reorder(order, moved, target) {
    const next = order.filter((name) => name !== moved);
    const at = next.indexOf(target) + (order.indexOf(moved) < order.indexOf(target) ? 1 : 0);
    next.splice(at, 0, moved);
    try {
      const result = await call("PUT", "/_admin/pipeline/order", { body: JSON.stringify({ order: next }),
                                                                   contentType: "application/json" });
      replace(this.message, h("p", { class: "ok", role: "status",
                                     text: `order: ${result.order.join(", ")} (generation ${result.generation})` }));
    } catch (err) {
      replace(this.message, problemBox(err));
    }
    await this.refresh().catch(() => {});
  }
}
