"""The OpenAPI 3.1 document of the admin API, served at ``GET /_admin/openapi.json``.

Stage settings come from ``STAGE_KEYS`` (host/settings.py), so the document names the same
keys, types and defaults as the config file and the checks.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..settings import NAME_PATTERN, ON_ERROR_POLICIES, STAGE_KEYS, STAGE_RANGES
from .auth import SCOPE
from .params import SETTING_KEYS
from .probes import MAX_SAMPLES

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
        "PipelineStage": _with("StageEntry", ["position", "kept_versions"], position=_INT, kept_versions=_INT),
        "Pipeline": {
            "type": "object", "required": ["generation", "served_generation", "pid", "stages"],
            "properties": {**_GENERATIONS, "pid": _INT, "source": {"type": "string"},
                           "written_at": {"type": "number"},
                           "stages": {"type": "array", "items": _ref("PipelineStage")}},
        },
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
                              probes={**_INT, "description": "Probe requests the version answered."}),
        "RollbackResult": _with("StageEntry", ["previous", "generation", "served_generation"],
                                previous=_SHA_OR_NULL, **_GENERATIONS),
        "RemoveResult": {
            "type": "object", "required": ["name", "removed", "generation", "served_generation"],
            "properties": {"name": {"type": "string"}, "removed": _SHA_OR_NULL, **_GENERATIONS},
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
    return parameters


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
                    "summary": "Check a module and make it the active version of stage {name}.",
                    "parameters": _upload_parameters(),
                    "requestBody": {"required": True, "content": {"application/wasm": {
                        "schema": {"type": "string", "format": "binary"}}}},
                    "responses": {**_ok("UploadResult", "A new version is active.", "201"),
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
            "/_admin/health": {"get": {
                "operationId": "health", "summary": "Liveness, and the answering worker's generation.",
                "responses": {**_ok("Health", "This worker is alive."), **_PROBLEM}}},
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
