"""A small client of the admin API, for ``mwhost upload|list|rollback|remove|reorder|rollout`` (stdlib only).

A refused call raises ``AdminCallFailed`` carrying the server's problem (status, detail); the
CLI prints the detail and exits non-zero.
"""

from __future__ import annotations

import datetime
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping

from .errors import HostError

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "MWHOST_URL"
TOKEN_ENV = "MWHOST_TOKEN"
TIMEOUT_S = 60.0


class AdminCallFailed(HostError):
    """The admin API refused a call (``status``, ``problem``) or could not be reached (status 0)."""

    def __init__(self, message: str, status: int = 0, problem: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = dict(problem or {})


class AdminClient:
    """Calls the admin API at ``url`` with bearer ``token``."""

    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self.token = token or os.environ.get(TOKEN_ENV) or ""
        if not self.token:
            raise AdminCallFailed(f"no admin token: pass --token or set ${TOKEN_ENV} (`mwhost serve` prints "
                                  "one when it generates its secret; `mwhost token` makes one)")

    def pipeline(self) -> dict[str, Any]:
        return self._call("GET", "/_admin/pipeline")

    def versions(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/_admin/middlewares/{_segment(name)}/versions")

    def fleet(self) -> dict[str, Any] | None:
        """``GET /_admin/fleet``: None on a host without a fleet (404); ``{"error": ...}`` while
        the fleet store does not answer (503), so ``mwhost list`` still prints the pipeline."""
        try:
            return self._call("GET", "/_admin/fleet")
        except AdminCallFailed as err:
            if err.status == 404:
                return None
            if err.status == 503:
                return {"error": err.problem.get("detail") or str(err)}
            raise

    def upload(self, name: str, wasm: bytes, *, signature: str | None = None,
               params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/wasm"}
        if signature:
            headers["X-Mwhost-Signature"] = signature
        query = {key: value for key, value in (params or {}).items() if value is not None}
        return self._call("PUT", f"/_admin/middlewares/{_segment(name)}", query, wasm, headers)

    def rollback(self, name: str, sha256: str | None = None) -> dict[str, Any]:
        query = {"sha256": sha256} if sha256 else {}
        return self._call("POST", f"/_admin/middlewares/{_segment(name)}/rollback", query)

    def remove(self, name: str) -> dict[str, Any]:
        return self._call("DELETE", f"/_admin/middlewares/{_segment(name)}")

    def start_rollout(self, name: str, wasm: bytes, kind: str, *, signature: str | None = None,
                      params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The module becomes the candidate of a ``kind`` (canary|shadow) rollout of stage ``name``."""
        return self.upload(name, wasm, signature=signature, params={**(params or {}), "rollout": kind})

    def rollout(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/_admin/middlewares/{_segment(name)}/rollout")

    def control_rollout(self, name: str, action: str, reason: str | None = None) -> dict[str, Any]:
        """``action`` is promote, abort, pause or resume."""
        query = {"reason": reason} if reason else {}
        return self._call("POST", f"/_admin/middlewares/{_segment(name)}/rollout/{action}", query)

    def reorder(self, order: list[str]) -> dict[str, Any]:
        return self._call("PUT", "/_admin/pipeline/order", body=json.dumps({"order": order}).encode(),
                          headers={"Content-Type": "application/json"})

    def _call(self, method: str, path: str, query: Mapping[str, Any] | None = None, body: bytes | None = None,
              headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        url = self.url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Accept": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            raise _failure(err) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise AdminCallFailed(f"cannot reach the admin API at {self.url}: {reason}") from err


def _segment(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _failure(err: urllib.error.HTTPError) -> AdminCallFailed:
    raw = err.read()
    try:
        problem = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    detail = problem.get("detail") or raw.decode(errors="replace").strip() or err.reason
    detail = " ".join(str(detail).split())  # NOTE: one line on a terminal, whatever the server wrote
    return AdminCallFailed(f"{err.code} {problem.get('title') or err.reason}: {detail}", err.code, problem)


# ---- readable output for the CLI ----------------------------------------------------------

def short(sha256: str | None) -> str:
    return sha256[:12] if sha256 else "-"


def format_pipeline(pipeline: Mapping[str, Any], fleet: Mapping[str, Any] | None = None) -> str:
    """``mwhost list``: the pipeline, its rollouts in progress and, on a fleet host, ``fleet``
    (``GET /_admin/fleet``, asked separately: reading the pipeline never touches Redis)."""
    lines = [f"generation {pipeline['generation']} (last written by {pipeline.get('source') or '?'}; "
             f"pid {pipeline['pid']} serves generation {pipeline['served_generation']})"]
    if not pipeline["stages"]:
        return "\n".join(lines + ["no stages: requests reach the app unchanged"] + format_fleet(fleet))
    rows = [("POS", "STAGE", "VERSION", "ORIGIN", "ON_ERROR", "TIMEOUT", "MEMORY", "KEPT")]
    rows += [(str(s["position"]), s["name"], short(s["sha256"]), s["origin"], s["on_error"],
              f"{s['timeout_ms']} ms", f"{s['max_memory_mb']} MiB", str(s["kept_versions"]))
             for s in pipeline["stages"]]
    return "\n".join(lines + _table(rows) + format_running_rollouts(pipeline.get("rollouts") or [])
                     + format_fleet(fleet))


def format_fleet(fleet: Mapping[str, Any] | None) -> list[str]:
    """The lines ``mwhost list`` adds on a fleet host: every host's served generations and
    its drift from the fleet's generation (docs/fleet.md); none without a fleet."""
    if not fleet:
        return []
    if "error" in fleet:
        return ["", f"fleet: {fleet['error']}"]
    rows = [("HOST", "ADDRESS", "WORKERS", "SERVED", "DRIFT", "IN SYNC")]
    for host in fleet["hosts"]:
        served = sorted(set(host.get("workers", {}).values()))
        rows.append((host["host"], host.get("address") or "-", str(len(host.get("workers", {}))),
                     ",".join(map(str, served)) or "-", str(host.get("drift", "-")), "yes" if host["in_sync"] else "no"))
    state = "in sync" if fleet["in_sync"] else "DRIFTING"
    return ["", f"fleet {fleet['name']!r} at generation {fleet['generation']}: {len(fleet['hosts'])} host(s), "
                f"{state}"] + _table(rows)


def format_running_rollouts(rollouts: list[Mapping[str, Any]]) -> list[str]:
    """The lines ``mwhost list`` adds for the rollouts in progress (none: no lines)."""
    if not rollouts:
        return []
    rows = [("STAGE", "KIND", "STATE", "PERCENT", "STEP", "CANDIDATE", "REASON")]
    rows += [(r["stage"], r["kind"], r["state"], f"{r['percent']}%", _step(r), short(r["candidate"]),
              r.get("reason") or "-") for r in rollouts]
    return ["", f"{len(rollouts)} rollout(s) in progress (`mwhost rollout status STAGE` for details):"] + _table(rows)


def _step(rollout: Mapping[str, Any]) -> str:
    if rollout["kind"] == "shadow":
        return "-"
    return f"{rollout['step'] + 1}/{len(rollout['steps'])}"


def format_rollout(view: Mapping[str, Any]) -> str:
    """``mwhost rollout status``: the rollout's state, share, gates, analysis and history."""
    lines = [_rollout_headline(view)]
    gates = view.get("gates") or {}
    if view["kind"] == "canary":
        lines.append(f"steps {', '.join(f'{p}%' for p in view['steps'])}; each lasts at least {view['step_s']:g} s "
                     f"and {gates.get('min_requests', '?')} candidate requests; bucketed by {view['key']}")
        lines.append(f"gates: failures per call <= {gates.get('max_failure_rate', '?')}, 5xx rate over the "
                     f"baseline's <= {gates.get('max_error_rate_delta', '?')}, p99 over the baseline's <= "
                     f"{gates.get('max_latency_ratio', '?')}x")
    else:
        lines.append(f"sees a copy of {view['percent']}% of requests after each response (bucketed by "
                     f"{view['key']}); its actions are compared, never applied; it never promotes itself")
    lines.append(f"started {_when(view['started_at'])}" + (f", ended {_when(view['ended_at'])}"
                                                           if view.get("ended_at") else ""))
    if view.get("reason"):
        lines.append(f"reason: {view['reason']}")
    lines += _analysis(view.get("analysis"))
    lines += _results(view.get("results") or [])
    for key in sorted(set(view) - _SHOWN):
        lines.append(f"{key}: {json.dumps(view[key], sort_keys=True)}")
    return "\n".join(lines)


#: members of the rollout view that ``format_rollout`` shows in its own lines
_SHOWN = {"stage", "state", "kind", "baseline", "candidate", "percent", "steps", "step", "step_s", "key", "gates",
          "started_at", "step_started_at", "ended_at", "reason", "results", "analysis", "generation",
          "served_generation", "signed_by", "probes", "started_by"}


def _rollout_headline(view: Mapping[str, Any]) -> str:
    where = f"{view['stage']}: {view['kind']} {view['state']}, candidate {short(view['candidate'])}"
    if view["state"] in ("promoted", "aborted"):
        outcome = "is the active version" if view["state"] == "promoted" else "is out of the traffic (kept)"
        return f"{where} {outcome}; baseline {short(view['baseline'])}"
    share = (f"at {view['percent']}% (step {view['step'] + 1} of {len(view['steps'])})"
             if view["kind"] == "canary" else f"sees {view['percent']}%")
    return f"{where} {share}; baseline {short(view['baseline'])}"


def _analysis(analysis: Any) -> list[str]:
    """The current step's counts per variant, as a table (the decider's ``analysis``)."""
    if not isinstance(analysis, Mapping):
        return []
    variants = [v for v in ("baseline", "candidate") if isinstance(analysis.get(v), Mapping)]
    if not variants:
        return []
    rows = [("VARIANT", "REQUESTS", "FAILURES", "5XX", "P99")]
    for variant in variants:
        counts = analysis[variant]
        p99 = counts.get("p99_ms")
        rows.append((variant, str(counts.get("requests", "-")), str(counts.get("failures", "-")),
                     str(counts.get("5xx", counts.get("errors", "-"))), "-" if p99 is None else f"{p99:.3g} ms"))
    return [f"this step ({analysis.get('percent', '?')}%):"] + _table(rows)


def _results(results: list[Mapping[str, Any]]) -> list[str]:
    if not results:
        return []
    rows = [("STEP", "PERCENT", "OUTCOME", "REASON")]
    rows += [(str(r.get("step", 0) + 1), f"{r.get('percent', '?')}%", str(r.get("outcome", "?")),
              str(r.get("reason") or "-")) for r in results]
    return ["steps so far:"] + _table(rows)


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_rollout_started(view: Mapping[str, Any]) -> str:
    return (f"{view['stage']}: {view['kind']} rollout of {short(view['candidate'])} started beside "
            f"{short(view['baseline'])} at {view['percent']}% (generation {view['generation']}; "
            f"{view['probes']} probe requests passed)")


def format_rollout_control(view: Mapping[str, Any]) -> str:
    return (f"{view['stage']}: {view['kind']} rollout of {short(view['candidate'])} is {view['state']} "
            f"({view['reason']}; generation {view['generation']})")


def format_versions(versions: Mapping[str, Any]) -> str:
    rows = [("", "VERSION", "ORIGIN", "ON_ERROR", "TIMEOUT", "MEMORY", "CONFIG")]
    rows += [("*" if v["active"] else "", short(v["sha256"]), v["origin"], v["on_error"], f"{v['timeout_ms']} ms",
              f"{v['max_memory_mb']} MiB", ", ".join(sorted(v["config"])) or "-")
             for v in versions["versions"]]
    state = "" if versions["active"] else " (not in the pipeline: `mwhost rollback` brings it back)"
    return "\n".join([f"{versions['name']}: {len(versions['versions'])} version(s), newest first, * = active"
                      f"{state}"] + _table(rows))


def format_upload(result: Mapping[str, Any]) -> str:
    if not result["changed"]:
        return (f"{result['name']}: {short(result['sha256'])} was already active with these settings "
                f"(generation {result['generation']})")
    signed = f"; signed by key {result['signed_by']}" if result.get("signed_by") else ""
    return (f"{result['name']}: {short(result['sha256'])} active at position {result['position']} "
            f"(generation {result['generation']}; {result['probes']} probe requests passed{signed})"
            + _ended(result))


def _ended(result: Mapping[str, Any]) -> str:
    return f"; its rollout {result['ended_rollout']}" if result.get("ended_rollout") else ""


def format_rollback(result: Mapping[str, Any]) -> str:
    change = (f"rolled back from {short(result['previous'])} to {short(result['sha256'])}" if result["previous"]
              else f"back in the pipeline at {short(result['sha256'])} (it had been removed)")
    return f"{result['name']}: {change} (generation {result['generation']})" + _ended(result)


def format_remove(result: Mapping[str, Any]) -> str:
    return (f"{result['name']}: removed (was {short(result['removed'])}; generation {result['generation']}); "
            f"`mwhost rollback {result['name']}` brings it back" + _ended(result))


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
