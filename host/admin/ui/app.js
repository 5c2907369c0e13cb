// The console's shell: logging in (a pasted token or the #token= fragment), the hash
// router (#/pipeline, #/stage/NAME, #/rollouts/NAME, #/workers, #/audit) and the refresh
// loop that keeps the open view live.

import { forgetToken, get, setToken, takeFragmentToken, token } from "./api.js";
import { h, replace } from "./dom.js";
import { PipelineView } from "./pipeline.js";
import { RolloutsView } from "./rollouts.js";
import { StageView } from "./stage.js";
import { AuditView, WorkersView } from "./workers.js";

// NOTE: 1.5 s: inside the 1-2 s an operator watching a rollout expects, and over the 1 s
// the workers take to flush their counts
const REFRESH_MS = 1500;
const VIEWS = { pipeline: PipelineView, stage: StageView, rollouts: RolloutsView, workers: WorkersView, audit: AuditView };

class Console {
  constructor() {
    this.main = document.getElementById("main");
    this.status = document.getElementById("status");
    this.login = document.getElementById("login");
    this.pipeline = null;
    this.view = null;
    this.inFlight = false;
  }

  start() {
    document.getElementById("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.logIn(document.getElementById("login-token").value);
    });
    document.getElementById("logout").addEventListener("click", () => {
      forgetToken();
      this.showLogin("");
    });
    window.addEventListener("mwhost:unauthorized", () => this.showLogin("The token was refused (expired, wrong "
      + "secret or missing scope): log in again."));
    window.addEventListener("hashchange", () => this.route());
    setInterval(() => this.tick(), REFRESH_MS);
    this.route();
  }

  async logIn(value) {
    if (!value.trim()) return;
    setToken(value);
    try {
      await get("/_admin/pipeline");
    } catch (err) {
      forgetToken();
      this.showLogin(err.message);
      return;
    }
    this.route();
  }

  showLogin(message) {
    this.view = null;
    this.login.hidden = false;
    this.main.hidden = true;
    document.getElementById("logout").hidden = true;
    const error = document.getElementById("login-error");
    error.textContent = message;
    error.hidden = !message;
  }

  go(hash) {
    location.hash = hash;
  }

  route() {
    // NOTE: first: a #token= link opened in this tab logs in, even after a logout
    if (takeFragmentToken() === "malformed") {
      return this.showLogin("The #token= link is malformed (a bad %-escape): paste the token instead.");
    }
    if (!token()) return this.showLogin("");
    const [, viewName = "pipeline", arg = ""] = /^#\/?([a-z]*)\/?(.*)$/.exec(location.hash) || [];
    const View = VIEWS[viewName] || PipelineView;
    this.login.hidden = true;
    this.main.hidden = false;
    document.getElementById("logout").hidden = false;
    for (const link of document.querySelectorAll("#nav a")) {
      link.classList.toggle("on", link.dataset.view === (VIEWS[viewName] ? viewName : "pipeline"));
    }
    this.view = new View(this);
    this.view.mount(this.main, decodeURIComponent(arg));
    this.inFlight = false;
    this.tick();
  }

  async tick() {
    const view = this.view;
    if (!view || this.inFlight || document.hidden) return;
    this.inFlight = true;
    try {
      await view.refresh();
      if (view === this.view) replace(this.status, `updated ${new Date().toLocaleTimeString()}`);
    } catch (err) {
      if (view === this.view && err.status !== 401) replace(this.status, h("span", { class: "stale", title: err.message, text: `refresh failed: ${err.message}` }));
    } finally {
      if (view === this.view) this.inFlight = false;
    }
  }
}

new Console().start();

