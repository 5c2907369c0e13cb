"""What ``GET /_admin/middlewares/{name}/rollout`` shows: a rollout's state and analysis."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

from ..registry.rollout import Rollout
from .counts import merged, merged_shadow, step_key

#: what ``analysis`` shows per variant
ANALYSIS_FIELDS = ("requests", "failures", "errors", "failure_rate", "error_rate", "p99_ms")


def describe(name: str, rollout: Rollout, data_dir: pathlib.Path) -> dict[str, Any]:
    """The rollout of stage ``name`` as JSON: state, kind, baseline, candidate, percent, steps,
    step, key, started_at, reason, and per-step analysis (the decider's counts, merged from
    every worker of this host) and, for a shadow, its merged results."""
    view = {
        "stage": name,
        "state": rollout.state,
        "kind": rollout.kind,
        "baseline": rollout.baseline,
        "candidate": rollout.candidate_sha256,
        "percent": rollout.candidate_percent,
        "steps": list(rollout.steps),
        "step": rollout.step,
        "step_s": rollout.step_s,
        "key": rollout.key,
        "gates": {"min_requests": rollout.gates.min_requests, "max_failure_rate": rollout.gates.max_failure_rate,
                  "max_error_rate_delta": rollout.gates.max_error_rate_delta,
                  "max_latency_ratio": rollout.gates.max_latency_ratio},
        "started_at": rollout.started_at,
        "step_started_at": rollout.step_started_at,
        "ended_at": rollout.ended_at or None,
        "reason": rollout.reason,
        "results": [dataclasses.asdict(result) for result in rollout.results],
        "analysis": analysis(rollout, data_dir),
    }
    if rollout.kind == "shadow":
        view["shadow"] = merged_shadow(data_dir, step_key(rollout))
    return view


def analysis(rollout: Rollout, data_dir: pathlib.Path) -> dict[str, object]:
    """The current step's counts per variant (``5xx`` is ``errors``), merged from every
    worker's counts file; an ended rollout shows its last step's recorded counts."""
    counts = merged(data_dir, step_key(rollout))
    if not rollout.active and rollout.results and not any(c["requests"] for c in counts.values()):
        counts = {variant: dict(values) for variant, values in rollout.results[-1].counts.items()}
    body: dict[str, object] = {"step": rollout.step, "percent": rollout.steps[rollout.step]}
    for variant, values in counts.items():
        shown = {field: values.get(field) for field in ANALYSIS_FIELDS}
        shown["5xx"] = shown["errors"]
        body[variant] = shown
    return body
