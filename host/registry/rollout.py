"""Rollouts in the manifest: a candidate version beside a stage's active one (the baseline).

A rollout is part of the desired pipeline, so every worker routes by the same manifest and a
restart resumes it; each transition (a step advanced, a pause, a promotion, an abort) is a
manifest generation. The transitions here are pure functions ``Manifest -> Manifest``, run
under the manifest lock by whoever decides (the decider, the admin API). docs/rollouts.md.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import RegistryError

KINDS = ("canary", "shadow")
ACTIVE_STATES = ("running", "waiting", "paused")
STATES = (*ACTIVE_STATES, "promoted", "aborted")
DEFAULT_STEPS = (1, 5, 25, 50, 100)


class RolloutError(RegistryError):
    """A rollout in the manifest is invalid."""


@dataclass(frozen=True)
class Gates:
    """What a step must show before it advances (docs/rollouts.md)."""

    min_requests: int = 100
    max_failure_rate: float = 0.01
    max_error_rate_delta: float = 0.01
    max_latency_ratio: float = 2.0


@dataclass(frozen=True)
class StepResult:
    """The analysis of one finished step (or the current one when a rollout ended)."""

    step: int
    percent: int
    outcome: str                      # advanced | promoted | aborted | ended
    reason: str
    counts: Mapping[str, Any] = field(default_factory=dict)   # per variant: requests, failures, ...
    at: float = 0.0


@dataclass(frozen=True)
class Rollout:
    """A candidate version of one stage beside the baseline.

    ``candidate`` is the candidate's manifest entry as a plain dict (a StageEntry's JSON);
    ``id`` salts the bucketing hash (two rollouts never pick the same users first) and keys
    the traffic counts.
    """

    kind: str
    candidate: Mapping[str, Any]
    baseline: str
    id: str
    steps: tuple[int, ...] = DEFAULT_STEPS
    step: int = 0
    step_s: float = 60.0
    key: str = "remote_addr"
    gates: Gates = field(default_factory=Gates)
    percent: int = 100                # a shadow's share of requests; a canary's comes from steps
    state: str = "running"
    reason: str = ""
    started_at: float = 0.0
    step_started_at: float = 0.0
    ended_at: float = 0.0
    results: tuple[StepResult, ...] = ()

    @classmethod
    def start(cls, kind: str, candidate: Mapping[str, Any], baseline: str, **options: Any) -> "Rollout":
        now = time.time()
        return cls(kind=kind, candidate=dict(candidate), baseline=baseline, id=secrets.token_hex(8),
                   started_at=now, step_started_at=now, **options)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def candidate_sha256(self) -> str:
        return str(self.candidate.get("sha256", ""))

    @property
    def candidate_percent(self) -> int:
        """The share of requests the candidate serves (a canary) or sees (a shadow) now."""
        if not self.active:
            return 0
        return self.percent if self.kind == "shadow" else self.steps[self.step]

    def with_state(self, state: str, reason: str, **changes: Any) -> "Rollout":
        ended = {"ended_at": time.time()} if state not in ACTIVE_STATES else {}
        return dataclasses.replace(self, state=state, reason=reason, **ended, **changes)

    def to_json(self) -> dict[str, Any]:
        body = dataclasses.asdict(self)
        body["steps"] = list(self.steps)
        body["results"] = [dataclasses.asdict(result) for result in self.results]
        return body

    @classmethod
    def from_json(cls, data: Any) -> "Rollout":
        if not isinstance(data, dict):
            raise RolloutError("a rollout must be an object")
        try:
            body = dict(data)
            body["steps"] = tuple(int(step) for step in body.get("steps", DEFAULT_STEPS))
            body["gates"] = Gates(**body.get("gates", {}))
            body["results"] = tuple(StepResult(**result) for result in body.get("results", ()))
            rollout = cls(**body)
        except (TypeError, ValueError) as err:
            raise RolloutError(f"a rollout is incomplete or invalid: {err}") from err
        rollout.check()
        return rollout

    def check(self) -> None:
        if self.kind not in KINDS:
            raise RolloutError(f"rollout kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.state not in STATES:
            raise RolloutError(f"rollout state {self.state!r} is not one of {', '.join(STATES)}")
        if not self.steps or list(self.steps) != sorted(set(self.steps)) or self.steps[-1] != 100 \
                or self.steps[0] < 1:
            raise RolloutError(f"rollout steps {list(self.steps)} must increase and end at 100")
        if not 0 <= self.step < len(self.steps):
            raise RolloutError(f"rollout step {self.step} is out of range")
        if not isinstance(self.candidate, Mapping) or len(self.candidate_sha256) != 64:
            raise RolloutError("a rollout's candidate must be a stage entry with a sha256")
