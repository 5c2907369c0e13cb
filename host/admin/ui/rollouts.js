// Rollouts view: a stage's rollout (active or the latest ended): progress over the steps,
// candidate against baseline per step as charts, the operator controls, and a shadow's
// differences.

import { call, get, stagePath } from "./api.js";
import { groupedBars, stepProgress } from "./charts.js";
import { h, percent, problemBox, replace, short } from "./dom.js";

const METRICS = [
  ["requests", "requests", (v) => String(v)],
  ["failures", "stage failures", (v) => String(v)],
  ["5xx", "5xx answers", (v) => String(v)],
  ["p99_ms", "p99 stage call (ms)", (v) => v.toFixed(2)],
];
const CONTROLS = {
  promote: { label: "Promote", confirm: "Make the candidate the active version on every worker now?", when: ["running", "waiting", "paused"] },
  pause: { label: "Pause", when: ["running", "waiting"] },
  resume: { label: "Resume", when: ["paused"] },
  abort: { label: "Abort", confirm: "Take the candidate out of the traffic on every worker?", when: ["running", "waiting", "paused"] },
};

export class RolloutsView {
  constructor(app) {
    this.app = app;
  }

  mount(root, name) {
    this.name = name || "";
    this.tabs = h("nav", { class: "tabs", id: "rollout-tabs" });
    this.message = h("div", { id: "rollout-message" });
    this.body = h("div", { id: "rollout-body" });
    replace(root, h("h1", { text: "Rollouts" }), this.tabs, this.message, this.body);
  }

  async refresh() {
    const pipeline = await get("/_admin/pipeline");
    this.app.pipeline = pipeline;
    const active = (pipeline.rollouts || []).map((r) => r.stage);
    const names = [...new Set([...active, ...(this.name ? [this.name] : [])])];
    replace(this.tabs, names.length
      ? names.map((n) => h("a", { href: `#/rollouts/${encodeURIComponent(n)}`, class: n === this.name ? "tab on" : "tab",
                                  text: active.includes(n) ? `${n} ●` : n }))
      : h("p", { class: "hint", text: "No rollout is in progress. Start one from a stage's upload form "
                                      + "(as: canary or shadow), or with mwhost rollout start." }));
    if (!this.name) {
      if (active.length) this.app.go(`#/rollouts/${encodeURIComponent(active[0])}`);
      else replace(this.body);
      return;
    }
    let rollout;
    try {
      rollout = await get(stagePath(this.name, "/rollout"));
    } catch (err) {
      replace(this.body, problemBox(err));
      return;
    }
    const text = JSON.stringify(rollout);
    if (text === this.shownText) return;  // NOTE: keep the buttons under the pointer
    this.shownText = text;
    const started = `${rollout.candidate}@${rollout.started_at}`;
    if (this.shownStart && this.shownStart !== started) replace(this.message);  // about another rollout
    this.shownStart = started;
    replace(this.body, this.render(rollout));
  }

  render(r) {
    const ended = !["running", "waiting", "paused"].includes(r.state);
    return [
      h("div", { class: "rollout-head" },
        h("span", { class: `badge ${r.state}`, id: "rollout-state", text: r.state }),
        // NOTE: a promoted candidate is the active version: it serves 100% (the API's percent,
        // the candidate's share beside a baseline, is 0 once there is no baseline)
        h("span", { class: "big", id: "rollout-percent", dataset: { percent: r.percent },
                    text: `${r.state === "promoted" ? 100 : r.percent}%` }),
        h("span", { text: shareText(r) })),
      h("p", { class: "reason", id: "rollout-reason", text: r.reason || "" }),
      r.kind === "canary" ? stepProgress(r.steps, r.step, r.state) : null,
      h("dl", { class: "facts" },
        fact("candidate", h("span", { class: "mono", title: r.candidate, text: short(r.candidate) })),
        fact("baseline", h("span", { class: "mono", title: r.baseline, text: short(r.baseline) })),
        fact("key", r.key),
        r.kind === "canary" && [fact("step", `${r.step + 1} of ${r.steps.length} (${r.step_s} s each at least)`),
          fact("gates", Object.entries(r.gates || {}).map(([k, v]) => `${k}=${v}`).join(" "))]),
      ended ? null : h("div", { class: "controls" }, Object.entries(CONTROLS).map(([action, c]) =>
        h("button", { type: "button", id: `rollout-${action}`, class: action === "abort" ? "danger" : "",
                      disabled: !c.when.includes(r.state), onclick: () => this.control(action), text: c.label }))),
      r.kind === "shadow" ? shadowPart(r.shadow || {}) : this.canaryPart(r),
    ];
  }

  canaryPart(r) {
    return [
      h("h2", { text: "Candidate against baseline, per step" }),
      h("p", { class: "legend" }, h("span", { class: "swatch candidate" }), " candidate ",
        h("span", { class: "swatch baseline" }), " baseline"),
      h("div", { class: "charts", id: "rollout-charts" }, METRICS.map(([key, title, format]) =>
        groupedBars(title, steps(r).map((s) => ({ label: s.label, candidate: metric(s.counts.candidate, key),
                                                  baseline: metric(s.counts.baseline, key) })), format))),
      h("table", { class: "grid" }, h("thead", {}, h("tr", {}, ["step", "outcome", "candidate", "baseline", "reason"].map((t) => h("th", { text: t })))),
        h("tbody", {}, steps(r).map((s) => h("tr", {}, h("td", { text: s.label }), h("td", { text: s.outcome }),
          h("td", { text: variantText(s.counts.candidate) }), h("td", { text: variantText(s.counts.baseline) }),
          h("td", { text: s.reason }))))),
    ];
  }

  async control(action) {
    const c = CONTROLS[action];
    if (c.confirm && !confirm(`${c.confirm} (stage ${this.name})`)) return;
    try {
      const result = await call("POST", stagePath(this.name, `/rollout/${action}`));
      replace(this.message, h("p", { class: "ok", role: "status", text: `${action}: ${result.state} (generation ${result.generation})` }));
    } catch (err) {
      replace(this.message, problemBox(err));
    }
    this.shownText = null;
    await this.refresh().catch(() => {});
  }
}

// finished steps from `results`, then the current step's live analysis
function steps(r) {
  const rows = (r.results || []).map((s) => ({ label: `${s.percent}%`, outcome: s.outcome, reason: s.reason, counts: s.counts || {} }));
  const active = ["running", "waiting", "paused"].includes(r.state);
  if (active && r.analysis) {
    rows.push({ label: `${r.analysis.percent}% now`, outcome: r.state, reason: r.reason || "",
                counts: { candidate: r.analysis.candidate, baseline: r.analysis.baseline } });
  }
  return rows;
}

// a variant's count; finished steps record 5xx answers as `errors`
function metric(counts, key) {
  return key === "5xx" ? counts?.["5xx"] ?? counts?.errors : counts?.[key];
}

function shareText(r) {
  if (r.state === "promoted") return " the candidate is the active version now: it serves every request (canary ended)";
  if (r.state === "aborted") return " the candidate left the traffic; it stays a kept version";
  return ` of requests ${r.kind === "shadow" ? "copied to" : "served by"} the candidate (${r.kind})`;
}

function variantText(v) {
  if (!v) return "—";
  const p99 = typeof v.p99_ms === "number" ? `${v.p99_ms.toFixed(2)} ms` : "—";
  return `${v.requests ?? 0} req · ${v.failures ?? 0} failed (${percent(v.failure_rate)}) · ${v["5xx"] ?? v.errors ?? 0} 5xx · p99 ${p99}`;
}

function shadowPart(shadow) {
  return [
    h("h2", { text: "Shadow: the candidate's answers compared with the baseline's" }),
    h("p", { id: "shadow-counts", text: `same ${shadow.same ?? 0} · different ${shadow.different ?? 0} · `
      + `failed ${shadow.failed ?? 0} · dropped ${shadow.dropped ?? 0}` }),
    (shadow.differences || []).length
      ? h("table", { class: "grid", id: "shadow-differences" },
        h("thead", {}, h("tr", {}, h("th", { text: "at" }), h("th", { text: "difference" }))),
        h("tbody", {}, shadow.differences.map((d) => h("tr", {},
          h("td", { text: d.at ? new Date(d.at * 1000).toISOString() : "—" }),
          h("td", {}, h("code", { text: JSON.stringify(Object.fromEntries(Object.entries(d).filter(([k]) => k !== "at"))) }))))))
      : h("p", { class: "hint", text: "no differences so far" }),
  ];
}

function fact(label, value) {
  return [h("dt", { text: label }), h("dd", {}, value ?? "—")];
}
