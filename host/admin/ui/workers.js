// Workers view: each worker's pid and served generation (from /metrics), its readiness
// (serving the manifest's generation), and a fleet's hosts when the host is in one.
// Audit view: the latest admin and drop-folder writes.

import { ApiError, get } from "./api.js";
import { h, problemBox, replace, short } from "./dom.js";
import { parse, workers } from "./metrics.js";

export class WorkersView {
  constructor(app) {
    this.app = app;
  }

  mount(root) {
    this.summary = h("p", { class: "summary" });
    this.table = h("div", { id: "workers" });
    this.fleet = h("div", { id: "fleet" });
    replace(root, h("h1", { text: "Workers" }), this.summary, this.table, this.fleet);
  }

  async refresh() {
    const [pipeline, text, fleet] = await Promise.all([get("/_admin/pipeline"), get("/metrics"), fleetOrNull()]);
    this.app.pipeline = pipeline;
    const wanted = pipeline.generation;
    const rows = workers(parse(text));
    replace(this.summary, `manifest generation ${wanted} · ${rows.length} workers · `
      + `${rows.filter((w) => w.generation >= wanted).length} ready`);
    replace(this.table, h("table", { class: "grid", id: "workers-table" },
      h("thead", {}, h("tr", {}, ["pid", "generation", "readiness"].map((t) => h("th", { text: t })))),
      h("tbody", {}, rows.map((w) => h("tr", { dataset: { pid: w.pid } }, h("td", { text: w.pid }),
        h("td", { text: w.generation }),
        h("td", {}, h("span", { class: `badge ${w.generation >= wanted ? "running" : "waiting"}`,
                                text: w.generation >= wanted ? "ready" : `behind (wants ${wanted})` })))))));
    replace(this.fleet, fleet ? fleetPart(fleet) : "");
  }
}

// GET /_admin/fleet answers in a fleet only; a lone host answers 404.
async function fleetOrNull() {
  try {
    return await get("/_admin/fleet");
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 503)) return null;
    throw err;
  }
}

function fleetPart(fleet) {
  const hosts = Array.isArray(fleet.hosts) ? fleet.hosts : [];
  const columns = [...new Set(hosts.flatMap((host) => Object.keys(host)))];
  return [
    h("h2", { text: "Fleet" }),
    h("p", { class: "summary", text: Object.entries(fleet).filter(([, v]) => typeof v !== "object")
      .map(([k, v]) => `${k}: ${v}`).join(" · ") }),
    h("table", { class: "grid", id: "fleet-table" }, h("thead", {}, h("tr", {}, columns.map((c) => h("th", { text: c })))),
      h("tbody", {}, hosts.map((host) => h("tr", {}, columns.map((c) => h("td", {
        text: typeof host[c] === "object" ? JSON.stringify(host[c]) : String(host[c] ?? "—") })))))),
  ];
}

const AUDIT_COLUMNS = ["at", "who", "action", "stage", "result", "status", "version", "generation", "detail"];

export class AuditView {
  constructor(app) {
    this.app = app;
  }

  mount(root) {
    this.limit = h("select", { id: "audit-limit", onchange: () => this.refresh().catch(() => {}) },
      [50, 200, 1000].map((n) => h("option", { value: n, text: `latest ${n}` })));
    this.table = h("div", { id: "audit" });
    replace(root, h("h1", { text: "Audit" }), h("label", {}, "show ", this.limit), this.table);
  }

  async refresh() {
    let page;
    try {
      page = await get("/_admin/audit", { limit: this.limit.value });
    } catch (err) {
      replace(this.table, problemBox(err));
      return;
    }
    replace(this.table, h("table", { class: "grid", id: "audit-table" },
      h("thead", {}, h("tr", {}, AUDIT_COLUMNS.map((c) => h("th", { text: c })))),
      h("tbody", {}, page.entries.map((e) => h("tr", { class: `result-${e.result}` },
        h("td", { text: e.at }), h("td", { text: e.who }), h("td", { text: e.action }), h("td", { text: e.stage ?? "" }),
        h("td", { text: e.result }), h("td", { text: e.status }), h("td", { class: "mono", title: e.sha256 || "", text: e.sha256 ? short(e.sha256) : "" }),
        h("td", { text: e.generation ?? "" }), h("td", { class: "detail", text: e.detail || e.reason || "" }))))));
  }
}
