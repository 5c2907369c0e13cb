"""An upload's own sample requests (``samples``), checked by ``parse_samples``; admission
sends them after the golden requests (``host/pipeline/probes.py``)."""

from __future__ import annotations

import json
from typing import Any

from ..errors import AdminBadRequest

#: at most this many sample requests per upload
MAX_SAMPLES = 16

_SAMPLE_FIELDS = {"method": "GET", "path": "/", "query": "", "headers": [], "remote_addr": "127.0.0.1",
                  "scheme": "http", "ctx": {}}


def parse_samples(text: str) -> list[dict[str, Any]]:
    """Sample requests from JSON: a list of objects with any of ``method``, ``path``,
    ``query``, ``headers`` ([[name, value], ...]), ``remote_addr``, ``scheme``, ``ctx``."""
    try:
        samples = json.loads(text)
    except json.JSONDecodeError as err:
        raise AdminBadRequest(f"samples is not valid JSON: {err}", parameter="samples") from err
    if isinstance(samples, dict):
        samples = [samples]
    if not isinstance(samples, list):
        raise AdminBadRequest("samples must be a JSON list of request objects", parameter="samples")
    if len(samples) > MAX_SAMPLES:
        raise AdminBadRequest(f"at most {MAX_SAMPLES} sample requests, got {len(samples)}", parameter="samples")
    return [_sample(sample, f"samples[{i}]") for i, sample in enumerate(samples)]


def _sample(sample: Any, where: str) -> dict[str, Any]:
    if not isinstance(sample, dict):
        raise AdminBadRequest(f"{where} must be an object", parameter="samples")
    unknown = sorted(set(sample) - set(_SAMPLE_FIELDS))
    if unknown:
        raise AdminBadRequest(f"{where} has unknown field {unknown[0]!r} (known: {', '.join(_SAMPLE_FIELDS)})",
                              parameter="samples")
    request = {**_SAMPLE_FIELDS, **sample}
    for key in ("method", "path", "query", "remote_addr", "scheme"):
        if not isinstance(request[key], str):
            raise AdminBadRequest(f"{where}.{key} must be a string", parameter="samples")
    if not request["path"].startswith("/"):
        raise AdminBadRequest(f"{where}.path must start with '/'", parameter="samples")
    headers = request["headers"]
    if not (isinstance(headers, list) and all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
            for pair in headers)):
        raise AdminBadRequest(f"{where}.headers must be a list of [name, value] string pairs", parameter="samples")
    ctx = request["ctx"]
    if not (isinstance(ctx, dict) and all(isinstance(v, str) for v in ctx.values())):
        raise AdminBadRequest(f"{where}.ctx must map strings to strings", parameter="samples")
    request["headers"] = [[name.lower(), value] for name, value in headers]
    return request
