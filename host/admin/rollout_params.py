"""A rollout's query parameters (``PUT /_admin/middlewares/{name}?rollout=canary|shadow``).

Each parameter is checked on its own and a refusal names it (``parameter`` in the problem):
``steps`` (increasing percentages ending at 100), ``step_s``, ``key`` (a key form of
host/pipeline/bucket.py), the gates, and a shadow's ``percent``. The other parameters of the
call are the upload's (stage settings, config, samples: host/admin/params.py) and describe
the candidate. docs/rollouts.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import AdminBadRequest
from ..pipeline.bucket import KEY_FORMS, key_reader
from ..registry.rollout import DEFAULT_STEPS, KINDS, Gates
from .params import _integer, _shown, _single

ROLLOUT = "rollout"
#: the parameters of a rollout besides ``rollout`` itself, in documentation order
ROLLOUT_PARAMETERS = ("steps", "step_s", "key", "min_requests", "max_failure_rate", "max_error_rate_delta",
                      "max_latency_ratio", "percent")
#: parameters one kind of rollout does not take, and why
NOT_FOR = {"canary": {"percent": "a canary's share comes from steps"},
           "shadow": {"steps": "a shadow sees a fixed share (percent) and never advances"}}
#: upload parameters a rollout does not take, and why
NOT_WITH_ROLLOUT = {"position": "the candidate runs in the baseline's place"}
#: the largest min_requests (a step needing more would never get a verdict)
MAX_MIN_REQUESTS = 10 ** 9
#: an HTTP token (RFC 9110 §5.6.2): every header and cookie name is one
_PERCENT = re.compile(r"[0-9]{1,3}", re.ASCII)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}", re.ASCII)


@dataclass(frozen=True)
class RolloutOptions:
    """A checked rollout request: its kind and the options of ``Rollout.start``."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)


def split_rollout(params: Mapping[str, Any]) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """(the ``rollout`` kind or None, the rollout's parameters, the upload's parameters).
    Without ``rollout`` a rollout parameter is refused, naming what it needs."""
    kind = _single(params, ROLLOUT) if ROLLOUT in params else None
    rollout = {name: value for name, value in params.items() if name in ROLLOUT_PARAMETERS}
    upload = {name: value for name, value in params.items() if name not in ROLLOUT_PARAMETERS and name != ROLLOUT}
    if kind is None and rollout:
        name = sorted(rollout)[0]
        raise AdminBadRequest(f"parameter {name!r} belongs to a rollout: add rollout=canary or rollout=shadow",
                              parameter=name)
    if kind is not None:
        for name, why in NOT_WITH_ROLLOUT.items():
            if name in upload:
                raise AdminBadRequest(f"parameter {name!r} does not apply to a rollout ({why})", parameter=name)
    return kind, rollout, upload


def parse_rollout(kind: str, params: Mapping[str, Any]) -> RolloutOptions:
    """The checked options of a ``kind`` rollout from its query parameters (defaults for the rest)."""
    if kind not in KINDS:
        raise AdminBadRequest(f"rollout must be one of {', '.join(KINDS)}, got {_shown(kind)}", parameter=ROLLOUT)
    values = {name: _single(params, name) for name in params}
    for name, why in NOT_FOR[kind].items():
        if name in values:
            raise AdminBadRequest(f"parameter {name!r} is not for rollout={kind} ({why})", parameter=name)
    options: dict[str, Any] = {
        "steps": parse_steps(values["steps"]) if "steps" in values else DEFAULT_STEPS,
        "step_s": _number("step_s", values.get("step_s"), 60.0, low=0.0),
        "key": parse_key(values["key"]) if "key" in values else "remote_addr",
        "gates": _gates(values),
    }
    if kind == "shadow":
        options["steps"] = (100,)
        options["percent"] = _percent(values["percent"]) if "percent" in values else 100
    return RolloutOptions(kind, options)


def parse_steps(text: str) -> tuple[int, ...]:
    """``"1,5,25,50,100"``: whole percentages 1..100, strictly increasing, the last one 100."""
    pieces = text.split(",")
    steps = []
    for piece in pieces:
        if not _PERCENT.fullmatch(piece.strip()):
            raise AdminBadRequest(f"steps must be comma-separated whole percentages like 1,5,25,50,100; "
                                  f"{_shown(piece.strip())} is not one", parameter="steps")
        step = int(piece.strip())
        if not 1 <= step <= 100:
            raise AdminBadRequest(f"each of steps must be 1..100, got {step}", parameter="steps")
        if steps and step <= steps[-1]:
            raise AdminBadRequest(f"steps must increase: {step} follows {steps[-1]}", parameter="steps")
        steps.append(step)
    if steps[-1] != 100:
        raise AdminBadRequest(f"steps must end at 100 (the candidate's last step is all traffic), "
                              f"got {_shown(text)}", parameter="steps")
    return tuple(steps)


def parse_key(form: str) -> str:
    """A key form of host/pipeline/bucket.py; a header or cookie name must be an HTTP token."""
    try:
        key_reader(form)
    except ValueError as err:
        raise AdminBadRequest(f"key {_shown(form)} is not one of {', '.join(KEY_FORMS)}", parameter="key") from err
    kind, _, name = form.partition(":")
    if kind in ("header", "cookie") and not _TOKEN.fullmatch(name):
        raise AdminBadRequest(f"key {_shown(form)}: a {kind} name is letters, digits and !#$%&'*+-.^_`|~ "
                              "(1 to 128), so no request could carry this one", parameter="key")
    return form


def _gates(values: Mapping[str, str]) -> Gates:
    defaults = Gates()
    min_requests = defaults.min_requests
    if "min_requests" in values:
        min_requests = _integer("min_requests", values["min_requests"])
        if not 1 <= min_requests <= MAX_MIN_REQUESTS:
            raise AdminBadRequest(f"min_requests must be 1..{MAX_MIN_REQUESTS}, got {min_requests}",
                                  parameter="min_requests")
    return Gates(
        min_requests=min_requests,
        max_failure_rate=_number("max_failure_rate", values.get("max_failure_rate"), defaults.max_failure_rate,
                                 low=0.0, high=1.0),
        max_error_rate_delta=_number("max_error_rate_delta", values.get("max_error_rate_delta"),
                                     defaults.max_error_rate_delta, low=0.0, high=1.0),
        max_latency_ratio=_number("max_latency_ratio", values.get("max_latency_ratio"),
                                  defaults.max_latency_ratio, above=0.0),
    )


def _percent(text: str) -> int:
    percent = _integer("percent", text)
    if not 1 <= percent <= 100:
        raise AdminBadRequest(f"percent must be 1..100, got {percent}", parameter="percent")
    return percent


def _number(name: str, text: str | None, default: float, *, low: float | None = None,
            high: float | None = None, above: float | None = None) -> float:
    """A finite number from ``text`` (``default`` when absent) within its documented range."""
    if text is None:
        return default
    try:
        value = float(text.strip())
    except ValueError as err:
        raise AdminBadRequest(f"{name} must be a number, got {_shown(text)}", parameter=name) from err
    if not math.isfinite(value):
        raise AdminBadRequest(f"{name} must be a finite number, got {_shown(text)}", parameter=name)
    if low is not None and value < low:
        raise AdminBadRequest(f"{name} must be {low:g} or more, got {value:g}", parameter=name)
    if high is not None and value > high:
        raise AdminBadRequest(f"{name} must be at most {high:g}, got {value:g}", parameter=name)
    if above is not None and value <= above:
        raise AdminBadRequest(f"{name} must be greater than {above:g}, got {value:g}", parameter=name)
    return value
