// Stage view: one stage's settings, kept versions with rollback, removal, and an upload by
// file picker or drag-and-drop (as the active version, or as a canary's or shadow's
// candidate) with settings and config. Every refusal shows the problem's detail.

import { call, get, stagePath } from "./api.js";
import { h, problemBox, replace, short } from "./dom.js";
import { limitsText } from "./pipeline.js";

// query parameters of an upload that are not stage settings (docs/admin.md, docs/rollouts.md)
const NOT_SETTINGS = new Set(["position", "config", "samples", "rollout", "steps", "step_s", "key", "min_requests",
                              "max_failure_rate", "max_error_rate_delta", "max_latency_ratio", "percent"]);
const ROLLOUT_FIELDS = [
  ["steps", "canary steps (%)", "1,5,25,50,100"],
  ["step_s", "seconds per step", "60"],
  ["key", "bucket key", "remote_addr"],
  ["min_requests", "min requests per step", "100"],
  ["max_failure_rate", "max failure rate", "0.01"],
  ["max_error_rate_delta", "max 5xx rate delta", "0.01"],
  ["max_latency_ratio", "max p99 ratio", "2.0"],
  ["percent", "shadow percent", "100"],
];

let settingParameters = null;

// The stage settings an upload takes, from the API's own OpenAPI document (fetched once).
async function settingsFromOpenApi() {
  if (!settingParameters) {
    const doc = await get("/_admin/openapi.json");
    settingParameters = doc.paths["/_admin/middlewares/{name}"].put.parameters
      .filter((p) => p.in === "query" && !NOT_SETTINGS.has(p.name));
  }
  return settingParameters;
}

export class StageView {
  constructor(app) {
    this.app = app;
    this.file = null;
  }

  mount(root, name) {
    this.name = name || "";
    this.heading = h("h1", { text: name ? `Stage ${name}` : "Stage" });
    this.picker = h("select", { id: "stage-picker", onchange: () => this.app.go(`#/stage/${encodeURIComponent(this.picker.value)}`) });
    this.details = h("div", { id: "stage-details" });
    this.versions = h("div", { id: "stage-versions" });
    this.actions = h("div", { id: "stage-actions" });
    this.form = this.uploadForm();
    this.nameInput.value = this.name;
    this.shown = {};
    replace(root, this.heading, h("label", {}, "stage ", this.picker), this.details, this.actions,
      h("h2", { text: "Kept versions" }), this.versions, h("h2", { text: "Upload a version" }), this.form);
  }

  async refresh() {
    const pipeline = await get("/_admin/pipeline");
    this.app.pipeline = pipeline;
    const names = pipeline.stages.map((s) => s.name);
    if (!this.name && names.length) {
      this.app.go(`#/stage/${encodeURIComponent(names[0])}`);
      return;
    }
    if (this.picker.options.length !== names.length + (names.includes(this.name) ? 0 : 1)) {
      const options = names.includes(this.name) || !this.name ? names : [...names, this.name];
      replace(this.picker, options.map((n) => h("option", { value: n, text: n, selected: n === this.name })));
    }
    if (!this.name) return;
    const entry = pipeline.stages.find((s) => s.name === this.name);
    if (!this.changed("entry", entry)) return this.refreshVersions();
    replace(this.details, entry
      ? h("dl", { class: "facts" },
        fact("version", h("span", { class: "mono", title: entry.sha256, text: short(entry.sha256) })),
        fact("position", entry.position), fact("ABI", entry.abi || "v1"), fact("origin", entry.origin),
        fact("policy", entry.on_error), fact("limits", limitsText(entry)),
        fact("config", h("code", { text: JSON.stringify(entry.config) })))
      : h("p", { class: "hint", text: `${this.name} is not in the pipeline; an upload adds it.` }));
    replace(this.actions, entry ? h("button", { type: "button", class: "danger", id: "remove-stage",
                                                onclick: () => this.remove(), text: `Remove ${this.name}` }) : "");
    return this.refreshVersions();
  }

  // NOTE: redraw only what changed, so a button is not replaced under the operator's pointer
  changed(key, value) {
    const text = JSON.stringify(value ?? null);
    if (this.shown[key] === text) return false;
    this.shown[key] = text;
    return true;
  }

  async refreshVersions() {
    let versions;
    try {
      versions = await get(stagePath(this.name, "/versions"));
    } catch (err) {
      if (err.status !== 404) throw err;
      this.shown.versions = null;
      replace(this.versions, h("p", { class: "hint", text: "no kept versions" }));
      return;
    }
    if (!this.changed("versions", versions)) return;
    replace(this.versions, h("table", { id: "versions-table", class: "grid" },
      h("thead", {}, h("tr", {}, ["version", "origin", "policy", "limits", "config", ""].map((t) => h("th", { text: t })))),
      h("tbody", {}, versions.versions.map((v) => h("tr", { dataset: { sha256: v.sha256 }, class: v.active ? "active" : "" },
        h("td", { class: "mono", title: v.sha256, text: short(v.sha256) }), h("td", { text: v.origin }),
        h("td", { text: v.on_error }), h("td", { class: "limits", text: limitsText(v) }),
        h("td", {}, h("code", { text: JSON.stringify(v.config) })),
        h("td", {}, v.active ? h("span", { class: "badge running", text: "active" })
          : h("button", { type: "button", dataset: { rollback: v.sha256 }, onclick: () => this.rollback(v.sha256),
                          text: "Roll back to this" })))))));
  }

  async rollback(sha256) {
    if (!confirm(`Make version ${short(sha256)} of ${this.name} active on every worker?`)) return;
    await this.write(() => call("POST", stagePath(this.name, "/rollback"), { query: { sha256 } }),
      (r) => `rolled back ${this.name} to ${short(r.sha256)} (generation ${r.generation})`);
  }

  async remove() {
    if (!confirm(`Remove stage ${this.name} from the pipeline? Its version stays kept.`)) return;
    await this.write(() => call("DELETE", stagePath(this.name)),
      (r) => `removed ${this.name} (generation ${r.generation})`);
  }

  async write(action, describe) {
    try {
      const result = await action();
      this.result(h("p", { class: "ok", role: "status", text: describe(result) }));
    } catch (err) {
      this.result(problemBox(err));
    }
    await this.refresh().catch(() => {});
  }

  result(node) {
    replace(this.resultBox, node);
    this.resultBox.scrollIntoView({ block: "nearest" });
  }

  uploadForm() {
    this.fileInput = h("input", { type: "file", id: "upload-file", accept: ".wasm,application/wasm",
                                  onchange: () => this.choose(this.fileInput.files[0]) });
    this.fileLabel = h("span", { id: "upload-file-name", text: "no module chosen" });
    const drop = h("div", { class: "dropzone", id: "upload-drop" },
      h("p", {}, "Drop a .wasm module here, or "), h("label", { class: "button" }, "choose a file", this.fileInput),
      h("p", {}, this.fileLabel));
    drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      this.choose(event.dataTransfer.files[0]);
    });
    this.nameInput = h("input", { id: "upload-name", required: true, pattern: "[A-Za-z0-9_\\-]{1,64}",
                                  placeholder: "stage name" });
    this.mode = h("select", { id: "upload-mode", onchange: () => this.showRolloutFields() },
      h("option", { value: "", text: "activate now" }), h("option", { value: "canary", text: "canary rollout" }),
      h("option", { value: "shadow", text: "shadow rollout" }));
    this.settingsBox = h("fieldset", { class: "settings" }, h("legend", { text: "settings (empty: keep the current)" }));
    this.rolloutBox = h("fieldset", { class: "settings", hidden: true }, h("legend", { text: "rollout" }),
      ROLLOUT_FIELDS.map(([key, label, placeholder]) => field(key, label, h("input", { name: key, placeholder }))));
    this.config = h("textarea", { id: "upload-config", rows: 3, spellcheck: "false",
                                  placeholder: "{} (empty: keep the current config)" });
    this.position = h("input", { id: "upload-position", type: "number", min: 0, placeholder: "keep / last" });
    this.resultBox = h("div", { id: "upload-result" });
    settingsFromOpenApi().then((parameters) => {
      for (const p of parameters) {
        const input = p.schema.enum
          ? h("select", { name: p.name }, h("option", { value: "", text: "—" }), p.schema.enum.map((v) => h("option", { value: v, text: v })))
          : h("input", { name: p.name, type: "number", min: p.schema.minimum, max: p.schema.maximum,
                         placeholder: String(p.schema.default ?? "") });
        this.settingsBox.append(field(p.name, p.name, input, p.description));
      }
    }).catch((err) => this.settingsBox.append(problemBox(err)));
    return h("form", { id: "upload-form", onsubmit: (event) => { event.preventDefault(); this.upload(); } },
      drop, h("div", { class: "row" }, field("name", "stage", this.nameInput), field("mode", "as", this.mode),
        field("position", "position", this.position)),
      this.settingsBox, this.rolloutBox, field("config", "config (JSON object)", this.config),
      h("button", { type: "submit", id: "upload-submit", text: "Upload" }), this.resultBox);
  }

  showRolloutFields() {
    this.rolloutBox.hidden = !this.mode.value;
  }

  choose(file) {
    this.file = file || null;
    replace(this.fileLabel, file ? `${file.name} (${file.size} bytes)` : "no module chosen");
  }

  query() {
    const query = { position: this.position.value, config: this.config.value.trim() };
    for (const input of this.settingsBox.querySelectorAll("[name]")) query[input.name] = input.value;
    if (this.mode.value) {
      query.rollout = this.mode.value;
      for (const input of this.rolloutBox.querySelectorAll("[name]")) {
        if (input.name === "percent" ? this.mode.value === "shadow" : !(this.mode.value === "shadow" && input.name === "steps")) {
          query[input.name] = input.value;
        }
      }
    }
    return query;
  }

  // A rollout is always confirmed; an upload that activates at once is when it replaces the
  // stage's active version (a new stage's first version replaces nothing)
  async uploadQuestion(name, kind) {
    if (kind) return `Start a ${kind} rollout of ${this.file.name} on stage ${name}?`;
    const pipeline = await get("/_admin/pipeline").catch(() => this.app.pipeline);
    const active = (pipeline?.stages || []).find((s) => s.name === name);
    return active ? `Replace the active version ${short(active.sha256)} of stage ${name} with ${this.file.name} `
      + "on every worker now?" : null;
  }

  async upload() {
    const name = this.nameInput.value.trim() || this.name;
    if (!this.file) {
      this.result(problemBox({ message: "choose a .wasm module first (file picker or drop)" }));
      return;
    }
    const kind = this.mode.value;
    const question = await this.uploadQuestion(name, kind);
    if (question && !confirm(question)) return;
    this.result(h("p", { class: "hint", text: `uploading ${this.file.name}…` }));
    try {
      const result = await call("PUT", stagePath(name), { query: this.query(), body: this.file, contentType: "application/wasm" });
      this.result(h("p", { class: "ok", role: "status", id: "upload-ok" }, kind
        ? h("a", { href: `#/rollouts/${encodeURIComponent(name)}`, text: `${kind} of ${name} started: candidate ${short(result.candidate)} at ${result.percent}%` })
        : `${name}: version ${short(result.sha256)} ${result.changed ? "active" : "was active already"} (generation ${result.generation})`));
      if (name !== this.name) {
        // NOTE: replaceState fires no hashchange: the view (and this message) stays
        this.name = name;
        history.replaceState(null, "", `#/stage/${encodeURIComponent(name)}`);
        replace(this.heading, `Stage ${name}`);
      }
    } catch (err) {
      this.result(problemBox(err));
    }
    await this.refresh().catch(() => {});
  }
}

function fact(label, value) {
  return [h("dt", { text: label }), h("dd", {}, value ?? "—")];
}

function field(id, label, input, title) {
  return h("label", { class: "field", title }, h("span", { text: label }), input);
}
