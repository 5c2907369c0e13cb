"""What ``GET /_admin/middlewares/{name}/rollout`` shows: a rollout's state and analysis."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

from ..registry.rollout import Rollout


def describe(name: str, rollout: Rollout, data_dir: pathlib.Path) -> dict[str, Any]:
    """The rollout of stage ``name`` as JSON: state, kind, baseline, candidate, percent, steps,
    step, key, started_at, reason, and per-step analysis (the decider's counts, merged from
    every worker of this host)."""
    return {
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
    }
