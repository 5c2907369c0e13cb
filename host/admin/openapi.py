"""The OpenAPI 3.1 document of the admin API, served at ``GET /_admin/openapi.json``.

Stage settings come from ``STAGE_KEYS`` (host/settings.py), so the document names the same
keys, types and defaults as the config file and the checks.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..settings import NAME_PATTERN, ON_ERROR_POLICIES, STAGE_KEYS, STAGE_RANGES
from .audit import DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT
from .auth import SCOPE
from .params import SETTING_KEYS
from .probes import MAX_SAMPLES
from .rollout_params import MAX_MIN_REQUESTS

_REF = "#/components/schemas/"
_NAME = {"name": "name", "in": "path", "required": True, "description": "Stage name.",
         "schema": {"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$", "minLength": 1, "maxLength": 64}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _setting_schema(key: str) -> dict[str, Any]:
    spec = STAGE_KEYS[key]
    if key == "on_error":
        return {"type": "string", "enum": list(ON_ERROR_POLICIES), "default": spec.default, "description": spec.doc}
    minimum, maximum = STAGE_RANGES[key]
    return {"type": "integer", "minimum": minimum, "maximum": maximum, "default": spec.default,
            "description": spec.doc}


def _entry_schema() -> dict[str, Any]:
    properties = {
        "name": {"type": "string"},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "config": {"type": "object", "description": STAGE_KEYS["config"].doc},
        **{key: _setting_schema(key) for key in SETTING_KEYS},
        "origin": {"type": "string", "enum": ["config", "drop", "admin"],
                   "description": "Who put this version there."},
    }
    return {"type": "object", "required": list(properties), "properties": properties}


def _with(base: str, required: list[str], **properties: Any) -> dict[str, Any]:
    return {"allOf": [_ref(base), {"type": "object", "required": required, "properties": properties}]}


_INT = {"type": "integer"}
_GENERATIONS = {"generation": {**_INT, "description": "The manifest's generation after the call."},
                "served_generation": {**_INT, "description": "The generation the answering worker serves."}}
_SHA_OR_NULL = {"type": ["string", "null"]}
_SHA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_NUMBER = {"type": "number"}
_ENDED_ROLLOUT = {"type": ["string", "null"],
                  "description": "Why the stage's active rollout ended with this call (null: it had none)."}
_ROLLOUT_STATES = ["running", "waiting", "paused", "promoted", "aborted"]


def _rollout_schema() -> dict[str, Any]:
    """``GET /_admin/middlewares/{name}/rollout`` (host/watch/rollout_view.py ``describe``);
    the analysis may carry more members than these."""
    properties = {
        "stage": {"type": "string"},
        "state": {"type": "string", "enum": _ROLLOUT_STATES},
        "kind": {"type": "string", "enum": ["canary", "shadow"]},
        "baseline": {**_SHA, "description": "The active version beside the candidate."},
        "candidate": _SHA,
        "percent": {"type": "integer", "minimum": 0, "maximum": 100,
                    "description": "The share of requests the candidate serves (canary) or sees (shadow) now."},
        "steps": {"type": "array", "items": _INT},
        "step": {**_INT, "description": "0-based index into steps."},
        "step_s": _NUMBER,
        "key": {"type": "string"},
        "gates": {"type": "object"},
        "started_at": _NUMBER,
        "step_started_at": _NUMBER,
        "ended_at": {"type": ["number", "null"]},
        "reason": {"type": "string", "description": "Why it paused, waits or ended."},
        "results": {"type": "array", "items": {"type": "object"}, "description": "Each finished step's analysis."},
        "generation": _INT,
    }
    required = ["stage", "state", "kind", "baseline", "candidate", "percent", "steps", "step", "key",
                "started_at", "reason", "results"]
    return {"type": "object", "required": required, "properties": properties}


def _schemas() -> dict[str, Any]:
    return {
        "Problem": {
            "type": "object", "required": ["type", "title", "status", "detail"],
            "description": "RFC 9457 problem details; extension members (check, parameter, stage, ...) "
                           "say more.",
            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                           "status": {"type": "integer"}, "detail": {"type": "string"},
                           "check": {"type": "string", "enum": ["binary", "compile", "abi", "init", "probe",
                                                                "signature"]},
                           "parameter": {"type": "string"}, "stage": {"type": "string"}},
        },
        "StageEntry": _entry_schema(),
        "PipelineStage": _with("StageEntry", ["position", "kept_versions"], position=_INT, kept_versions=_INT,
                               abi={"type": ["string", "null"], "enum": ["v1", "http-wasm", None],
                                    "description": "The guest ABI the stage's module speaks (null: "
                                                   "its module cannot be loaded here)."}),
        "Pipeline": {
            "type": "object", "required": ["generation", "served_generation", "pid", "stages"],
            "properties": {**_GENERATIONS, "pid": _INT, "source": {"type": "string"},
                           "written_at": {"type": "number"},
                           "stages": {"type": "array", "items": _ref("PipelineStage")},
                           "rollouts": {"type": "array", "items": _ref("RolloutSummary"),
                                        "description": "The active rollouts, in pipeline order."}},
        },
        "RolloutSummary": {
            "type": "object", "required": ["stage", "kind", "state", "percent", "step", "steps", "candidate"],
            "properties": {"stage": {"type": "string"}, "kind": {"type": "string", "enum": ["canary", "shadow"]},
                           "state": {"type": "string", "enum": _ROLLOUT_STATES}, "percent": _INT, "step": _INT,
                           "steps": {"type": "array", "items": _INT}, "candidate": _SHA, "baseline": _SHA,
                           "reason": {"type": "string"}},
        },
        "Rollout": _rollout_schema(),
        "RolloutStarted": {"allOf": [_ref("Rollout"), {
            "type": "object", "required": ["generation", "served_generation", "probes"],
            "properties": {**_GENERATIONS, "probes": _INT, "signed_by": _SHA_OR_NULL,
                           "started_by": {"type": "string"}}}]},
        "Versions": {
            "type": "object", "required": ["name", "generation", "active", "versions"],
            "properties": {"name": {"type": "string"}, "generation": _INT, "active": _SHA_OR_NULL,
                           "versions": {"type": "array", "items": _with("StageEntry", ["active"],
                                                                         active={"type": "boolean"})}},
        },
        "UploadResult": _with("StageEntry", ["position", "generation", "served_generation", "changed", "probes"],
                              position=_INT, **_GENERATIONS,
                              changed={"type": "boolean",
                                       "description": "false: the same version and settings were active already"},
                              signed_by={**_SHA_OR_NULL, "description": "Fingerprint of the key that signed it."},
                              probes={**_INT, "description": "Probe requests the version answered."},
                              ended_rollout=_ENDED_ROLLOUT),
        "RollbackResult": _with("StageEntry", ["previous", "generation", "served_generation"],
                                previous=_SHA_OR_NULL, ended_rollout=_ENDED_ROLLOUT, **_GENERATIONS),
        "RemoveResult": {
            "type": "object", "required": ["name", "removed", "generation", "served_generation"],
            "properties": {"name": {"type": "string"}, "removed": _SHA_OR_NULL, "ended_rollout": _ENDED_ROLLOUT,
                           **_GENERATIONS},
        },
        "OrderRequest": {
            "type": "object", "required": ["order"],
            "properties": {"order": {"type": "array", "items": {"type": "string"},
                                     "description": "Every current stage, once, in the new order."}},
        },
        "OrderResult": {
            "type": "object", "required": ["order", "changed", "generation", "served_generation"],
            "properties": {"order": {"type": "array", "items": {"type": "string"}},
                           "changed": {"type": "boolean"}, **_GENERATIONS},
        },
        "AuditPage": {
            "type": "object", "required": ["limit", "entries"],
            "properties": {"limit": _INT, "entries": {"type": "array", "description": "Newest first.", "items": {
                "type": "object", "required": ["at", "who", "action", "stage", "result", "status"],
                "description": "One audit record (docs/admin.md, Audit log); more members by action.",
                "properties": {"at": {"type": "string"}, "who": {"type": "string"}, "action": {"type": "string"},
                               "stage": {"type": ["string", "null"]},
                               "result": {"type": "string", "enum": ["ok", "refused", "failed"]},
                               "status": _INT, "detail": {"type": "string"}, "sha256": {"type": "string"},
                               "generation": _INT, "pid": _INT}}}},
        },
        "Health": {
            "type": "object", "required": ["status", "pid", "generation", "stages"],
            "properties": {"status": {"type": "string"}, "pid": _INT, "generation": _INT,
                           "stages": {"type": "array", "items": {
                               "type": "object", "required": ["name", "version"],
                               "properties": {"name": {"type": "string"}, "version": {"type": "string"}}}}},
        },
    }


def _ok(schema: str, description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}}


_PROBLEM = {"default": {"description": "The call was refused and changed nothing (RFC 9457 problem).",
                        "content": {"application/problem+json": {"schema": _ref("Problem")}}}}


def _upload_parameters() -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        _NAME,
        {"name": "position", "in": "query", "schema": {"type": "integer", "minimum": 0},
         "description": "0-based place in the pipeline (default: where the stage was, else last)."},
        {"name": "config", "in": "query", "content": {"application/json": {"schema": {"type": "object"}}},
         "description": "The stage's config (JSON object) handed to mw_init (default: the replaced stage's)."},
        {"name": "samples", "in": "query",
         "content": {"application/json": {"schema": {"type": "array", "maxItems": MAX_SAMPLES,
                                                     "items": {"type": "object"}}}},
         "description": "Extra probe requests: objects with method, path, query, headers, remote_addr, "
                        "scheme, ctx."},
        {"name": "X-Mwhost-Signature", "in": "header", "schema": {"type": "string"},
         "description": "Base64 Ed25519 signature over the module's raw SHA-256 digest."},
    ]
    parameters += [{"name": key, "in": "query", "schema": _setting_schema(key), "description": STAGE_KEYS[key].doc}
                   for key in SETTING_KEYS]
    return parameters + _rollout_parameters()


def _rollout_parameters() -> list[dict[str, Any]]:
    """The query parameters that make an upload a rollout's candidate (docs/rollouts.md)."""
    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "schema": schema, "description": description}
    rate = {"type": "number", "minimum": 0, "maximum": 1}
    return [
        query("rollout", {"type": "string", "enum": ["canary", "shadow"]},
              "Start a rollout: the module becomes the candidate beside the active version (the baseline) "
              "instead of replacing it; 201 with the rollout."),
        query("steps", {"type": "string", "pattern": "^[0-9]{1,3}(,[0-9]{1,3})*$", "default": "1,5,25,50,100"},
              "Canary only: comma-separated candidate percentages (1..100), increasing, ending at 100."),
        query("step_s", {"type": "number", "minimum": 0, "default": 60},
              "The least time in seconds a step lasts before it may advance."),
        query("key", {"type": "string", "default": "remote_addr"},
              "What a request is bucketed by: header:NAME, cookie:NAME, jwt:sub or remote_addr (a request "
              "without the key is bucketed by its remote address)."),
        query("min_requests", {"type": "integer", "minimum": 1, "maximum": MAX_MIN_REQUESTS, "default": 100},
              "Candidate requests a step needs before any verdict."),
        query("max_failure_rate", {**rate, "default": 0.01},
              "Candidate stage failures (trap, timeout, limit, bad output) per call."),
        query("max_error_rate_delta", {**rate, "default": 0.01},
              "5xx rate of candidate-routed requests minus the baseline's."),
        query("max_latency_ratio", {"type": "number", "exclusiveMinimum": 0, "default": 2.0},
              "Candidate p99 stage-call time over the baseline's."),
        query("percent", {"type": "integer", "minimum": 1, "maximum": 100, "default": 100},
              "Shadow only: the share of requests the candidate sees a copy of."),
    ]


def _rollout_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {"/_admin/middlewares/{name}/rollout": {"get": {
        "operationId": "rollout", "summary": "Stage {name}'s latest rollout: state, percent, step, analysis.",
        "parameters": [_NAME],
        "responses": {**_ok("Rollout", "The rollout (active or ended)."), **_PROBLEM}}}}
    reason = {"name": "reason", "in": "query", "schema": {"type": "string", "maxLength": 200},
              "description": "A note for the audit log and the rollout's reason."}
    for action, summary in (("promote", "Make the candidate the active version now."),
                            ("abort", "Take the candidate out of the traffic; it stays a kept version."),
                            ("pause", "Hold the current share; no verdicts until resumed."),
                            ("resume", "Judge again; the current step starts over.")):
        paths[f"/_admin/middlewares/{{name}}/rollout/{action}"] = {"post": {
            "operationId": f"rollout{action.title()}", "summary": summary, "parameters": [_NAME, reason],
            "responses": {**_ok("Rollout", "The rollout after the change."), **_PROBLEM}}}
    return paths


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "mwhost admin API", "version": __version__,
                 "description": "Upload, inspect, roll back and remove WebAssembly middleware on a live "
                                f"host. Every call needs a bearer JWT with the scope {SCOPE!r}. Errors are "
                                "application/problem+json; a refused call changes nothing."},
        "security": [{"bearer": []}],
        "paths": {
            "/_admin/pipeline": {"get": {
                "operationId": "getPipeline", "summary": "The active generation, its stages and settings.",
                "responses": {**_ok("Pipeline", "The desired pipeline."), **_PROBLEM}}},
            "/_admin/pipeline/order": {"put": {
                "operationId": "reorder", "summary": "Reorder the stages.",
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("OrderRequest")}}},
                "responses": {**_ok("OrderResult", "The new order."), **_PROBLEM}}},
            "/_admin/middlewares/{name}": {
                "put": {
                    "operationId": "upload",
                    "summary": "Check a module and make it the active version of stage {name} (or, with "
                               "rollout=canary|shadow, the candidate of a rollout).",
                    "parameters": _upload_parameters(),
                    "requestBody": {"required": True, "content": {"application/wasm": {
                        "schema": {"type": "string", "format": "binary"}}}},
                    "responses": {"201": {"description": "A new version is active, or (rollout=...) the "
                                                         "candidate's rollout started.",
                                          "content": {"application/json": {"schema": {"anyOf": [
                                              _ref("UploadResult"), _ref("RolloutStarted")]}}}},
                                  **_ok("UploadResult", "This version and settings were active already."),
                                  **_PROBLEM}},
                "delete": {
                    "operationId": "remove", "summary": "Remove stage {name} (its version stays kept).",
                    "parameters": [_NAME],
                    "responses": {**_ok("RemoveResult", "Removed."), **_PROBLEM}},
            },
            "/_admin/middlewares/{name}/versions": {"get": {
                "operationId": "versions", "summary": "Kept versions of stage {name}, newest first.",
                "parameters": [_NAME],
                "responses": {**_ok("Versions", "The versions."), **_PROBLEM}}},
            "/_admin/middlewares/{name}/rollback": {"post": {
                "operationId": "rollback",
                "summary": "Make the previous version (or a kept one) of stage {name} active again.",
                "parameters": [_NAME, {"name": "sha256", "in": "query",
                                       "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{7,64}$"},
                                       "description": "The kept version to activate (a unique prefix will do)."}],
                "responses": {**_ok("RollbackResult", "Rolled back."), **_PROBLEM}}},
            **_rollout_paths(),
            "/_admin/audit": {"get": {
                "operationId": "audit", "summary": "The latest admin and drop-folder writes, newest first.",
                "parameters": [{"name": "limit", "in": "query",
                                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_AUDIT_LIMIT,
                                           "default": DEFAULT_AUDIT_LIMIT},
                                "description": "How many records (the newest)."}],
                "responses": {**_ok("AuditPage", "The records."), **_PROBLEM}}},
            "/_admin/health": {"get": {
                "operationId": "health", "summary": "Liveness, and the answering worker's generation.",
                "responses": {**_ok("Health", "This worker is alive."), **_PROBLEM}}},
            "/_admin/fleet": {"get": {
                "operationId": "fleet", "summary": "The hosts of this host's fleet, their served generations, drift "
                "(404 without a fleet; docs/fleet.md).",
                "responses": {"200": {"description": "The fleet's generation and its live hosts.",
                                      "content": {"application/json": {"schema": {"type": "object"}}}},
                              **_PROBLEM}}},
            "/_admin/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {
                    "schema": {"type": "object"}}}}, **_PROBLEM}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                           "description": f"HS256 or EdDSA; exp required; scope {SCOPE!r}."}},
            "schemas": _schemas(),
        },
    }
