"""An upload's query parameters: the stage's settings, its place, its config and samples.

The settings are the stage keys of ``host/settings.py`` (``on_error``, ``timeout_ms``,
``max_memory_mb``, ...) with the same checks as in ``mwhost.toml``; ``config`` is a JSON
object; ``position`` a 0-based place. Settings left out keep their current values when the
upload replaces a stage (a new stage gets the defaults), so a new version of ``auth`` does
not silently lose its config.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..abi import Codec
from ..errors import AdminBadRequest
from ..registry import StageEntry
from ..settings import STAGE_KEYS, StageSettings, check_config
from .probes import parse_samples

#: stage keys an upload may set as query parameters (everything but name, module and config)
SETTING_KEYS = tuple(key for key in STAGE_KEYS if key not in ("name", "module", "config"))
UPLOAD_PARAMETERS = ("position", "config", "samples", *SETTING_KEYS)


def check_name(name: str) -> None:
    complaint = STAGE_KEYS["name"].check(name)
    if complaint:
        raise AdminBadRequest(f"stage name {_shown(name)} {complaint}", parameter="name")


@dataclass(frozen=True)
class UploadOptions:
    settings: dict[str, Any]
    config: dict[str, Any]
    position: int | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)

    def stage_settings(self, name: str) -> StageSettings:
        return StageSettings(name=name, module=pathlib.Path(f"<upload of {name}>"), config=self.config,
                             **self.settings)


def parse_upload(params: Mapping[str, Any], current: StageEntry | None) -> UploadOptions:
    """Checked options from the query; ``current`` (the stage being replaced) gives the defaults."""
    unknown = sorted(set(params) - set(UPLOAD_PARAMETERS))
    if unknown:
        raise AdminBadRequest(f"unknown parameter {unknown[0]!r} (known: {', '.join(UPLOAD_PARAMETERS)})",
                              parameter=unknown[0])
    values = {name: _single(params, name) for name in params}
    settings = {key: getattr(current, key) if current else STAGE_KEYS[key].default for key in SETTING_KEYS}
    for key in SETTING_KEYS:
        if key in values:
            settings[key] = _setting(key, values[key])
    config = dict(current.config) if current else {}
    if "config" in values:
        config = _config(values["config"])
    position = _integer("position", values["position"]) if "position" in values else None
    if position is not None and position < 0:
        raise AdminBadRequest(f"position must be 0 or more, got {position}", parameter="position")
    samples = parse_samples(values["samples"]) if "samples" in values else []
    return UploadOptions(settings, config, position, samples)


def _single(params: Mapping[str, Any], name: str) -> str:
    value = params[name]
    if isinstance(value, list):
        raise AdminBadRequest(f"parameter {name!r} is given {len(value)} times; give it once", parameter=name)
    return value


def _integer(name: str, text: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError as err:
        raise AdminBadRequest(f"{name} must be an integer, got {_shown(text)}", parameter=name) from err


def _setting(key: str, text: str) -> Any:
    """A stage setting from its query text, checked against its documented range or choices
    (so the manifest and the runtime never see a value like fuel=10**30)."""
    spec = STAGE_KEYS[key]
    value: Any = _integer(key, text) if spec.type is int else text
    complaint = spec.check(value)
    if complaint:
        raise AdminBadRequest(f"{key} {complaint}, got {_shown(value)}", parameter=key)
    return value


def _shown(value: Any) -> str:
    """A parameter's value for an error message, cut short (it may be 4000 characters long)."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"


def _config(text: str) -> dict[str, Any]:
    try:
        config = json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as err:
        raise AdminBadRequest(f"config is not valid JSON: {err}", parameter="config") from err
    if not isinstance(config, dict):
        raise AdminBadRequest(f"config must be a JSON object, got {type(config).__name__}", parameter="config")
    complaint = check_config(config, "config")
    if complaint:
        raise AdminBadRequest(complaint, parameter="config")
    try:
        Codec().encode_config(config)
    except (OverflowError, ValueError, TypeError) as err:
        raise AdminBadRequest(f"config cannot be sent to the module as msgpack: {err}", parameter="config") from err
    return config


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
