"""The admin API's falcon resources. Every responder runs behind ``authorize`` (a falcon
hook): no route here answers without a valid admin token. Writes are audited."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from typing import Any, Callable, Iterator

import falcon

from ..errors import (
    AdminBadRequest, AdminError, AdminForbidden, AdminNotFound, ModuleTooLarge, UnsupportedModuleType,
)
from ..settings import AdminSettings
from ..watch import LivePipeline
from .audit import AuditLog
from .auth import Authenticator
from .openapi import document
from .rollout_params import ROLLOUT
from .service import AdminService
from .signatures import TrustedKeys

logger = logging.getLogger("mwhost.admin")

MIB = 1024 * 1024
WASM_TYPE = "application/wasm"
SIGNATURE_HEADER = "X-Mwhost-Signature"
#: largest JSON body an admin call takes (a reorder)
MAX_JSON_BYTES = 64 * 1024
#: longest operator note on a rollout control
MAX_REASON = 200


class Admin:
    """What every admin resource shares: token checks, the operations, the audit log."""

    def __init__(self, live: LivePipeline, settings: AdminSettings, auth: Authenticator,
                 trusted: TrustedKeys, audit: AuditLog | None = None) -> None:
        self.settings = settings
        self.auth = auth
        self.service = AdminService(live, settings, trusted)
        self.audit = audit or live.audit_log()

    def authorize(self, req: falcon.Request) -> None:
        try:
            claims = self.auth.claims(req.get_header("Authorization"))
        except AdminError as err:
            logger.warning("admin %s %s from %s refused: %s", req.method, req.path, req.remote_addr, err.detail)
            raise
        who = str(claims.get("sub", "?"))
        try:
            self.auth.check_scope(claims)
        except AdminForbidden as err:
            # NOTE: a valid token without the scope is someone known trying: audit the writes
            if req.method not in ("GET", "HEAD"):
                self.audit.record(who, f"{req.method} {req.path}", None, "refused", err.status,
                                  detail=err.detail, remote_addr=req.remote_addr)
            raise
        req.context.admin_sub = who

    @contextlib.contextmanager
    def audited(self, req: falcon.Request, action: str, stage: str | None) -> Iterator[dict[str, Any]]:
        """Record the call in the audit log, whatever its outcome; ``record`` collects fields."""
        record: dict[str, Any] = {}
        who = req.context.admin_sub
        try:
            yield record
        except AdminError as err:
            self.audit.record(who, action, stage, "refused", err.status, detail=err.detail,
                              remote_addr=req.remote_addr, **record)
            raise
        except Exception as err:
            logger.exception("admin %s %s failed unexpectedly", req.method, req.path)
            self.audit.record(who, action, stage, "failed", 500, detail=repr(err), remote_addr=req.remote_addr,
                              **record)
            raise AdminError(f"the call failed inside the server ({type(err).__name__}: {err}); see the "
                             "server log and the audit log for what changed") from err
        status = record.pop("status", 200)
        self.audit.record(who, action, stage, "ok", status, remote_addr=req.remote_addr, **record)

    def read_module(self, req: falcon.Request) -> bytes:
        """The upload's body, refused before it is read whole when it is over the limit."""
        media = (req.content_type or "").split(";")[0].strip().lower()
        if media != WASM_TYPE:
            raise UnsupportedModuleType(f"send the module as the raw body with Content-Type: {WASM_TYPE} "
                                        f"(got {req.content_type or 'none'})")
        limit = self.settings.max_module_mb * MIB
        length = req.content_length
        if length is not None and length > limit:
            raise ModuleTooLarge(_too_large(length, self.settings.max_module_mb), limit_bytes=limit)
        if length is None and "chunked" in (req.get_header("Transfer-Encoding") or "").lower():
            data = read_body(req, lambda: req.stream.read(limit + 1))
        else:
            data = read_body(req, req.bounded_stream.read)
        if len(data) > limit:  # a chunked body: read one byte past the limit, no more
            raise ModuleTooLarge(_too_large(limit, self.settings.max_module_mb, "over "), limit_bytes=limit)
        return data


def read_body(req: falcon.Request, read: Callable[[], bytes]) -> bytes:
    """The body ``read`` returns; a 400 when the client did not send it whole."""
    try:
        data = read()
    except Exception as err:
        # NOTE: the WSGI server raises its own errors here (gunicorn's NoMoreData for a
        # chunked body cut short, InvalidChunkSize, a socket timeout): whichever it is, the
        # client did not send a whole body, which is a bad request, not a server failure.
        raise AdminBadRequest(f"the request body could not be read whole ({type(err).__name__}: {err}); "
                              "send the complete body") from err
    if req.content_length is not None and len(data) < req.content_length:
        raise AdminBadRequest(f"the request body ended after {len(data)} of the {req.content_length} bytes "
                              "its Content-Length announced")
    return data


def _too_large(size: int, limit_mb: int, qualifier: str = "") -> str:
    return (f"the module is {qualifier}{size} bytes; this server takes modules up to {limit_mb} MiB "
            "([admin] max_module_mb)")


def authorize(req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
    """falcon hook: the request carries a valid admin token (else 401/403/503 problem)."""
    resource.admin.authorize(req)


def _no_params(req: falcon.Request, allowed: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(req.params) - set(allowed))
    if unknown:
        known = f" (known: {', '.join(allowed)})" if allowed else ""
        raise AdminBadRequest(f"unknown parameter {unknown[0]!r}{known}", parameter=unknown[0])


def _json_body(req: falcon.Request) -> Any:
    if req.content_length is not None and req.content_length > MAX_JSON_BYTES:
        raise AdminBadRequest(f"the JSON body is over {MAX_JSON_BYTES} bytes")
    raw = read_body(req, lambda: req.bounded_stream.read(MAX_JSON_BYTES + 1))
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise AdminBadRequest(f"the body is not valid JSON: {err}") from err


@falcon.before(authorize)
class PipelineResource:
    """``GET /_admin/pipeline``: the desired pipeline and this worker's generation."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.admin.service.pipeline()


@falcon.before(authorize)
class OrderResource:
    """``PUT /_admin/pipeline/order``: ``{"order": [names]}`` reorders the stages."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self.admin.audited(req, "reorder", None) as record:
            _no_params(req)
            body = _json_body(req)
            order = body.get("order") if isinstance(body, dict) else None
            if not (isinstance(order, list) and all(isinstance(name, str) for name in order)):
                raise AdminBadRequest('the body must be {"order": ["stage", ...]}')
            result = self.admin.service.reorder(order)
            record.update(generation=result["generation"], order=result["order"])
        resp.media = result


@falcon.before(authorize)
class MiddlewareResource:
    """``PUT /_admin/middlewares/{name}`` (upload) and ``DELETE`` (remove)."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if ROLLOUT in req.params:
            self._start_rollout(req, resp, name)
            return
        with self.admin.audited(req, "upload", name) as record:
            wasm = self.admin.read_module(req)
            record["sha256"] = hashlib.sha256(wasm).hexdigest()
            record["bytes"] = len(wasm)
            result = self.admin.service.upload(name, wasm, req.params, req.get_header(SIGNATURE_HEADER),
                                               req.context.admin_sub)
            record.update(generation=result["generation"], signed_by=result["signed_by"],
                          ended_rollout=result["ended_rollout"], status=201 if result["changed"] else 200)
        resp.status = 201 if result["changed"] else 200
        resp.location = f"/_admin/middlewares/{name}/versions"
        resp.media = result

    def _start_rollout(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """``PUT ...?rollout=canary|shadow``: the module becomes a candidate beside the active version."""
        with self.admin.audited(req, "rollout.start", name) as record:
            wasm = self.admin.read_module(req)
            record["sha256"] = hashlib.sha256(wasm).hexdigest()
            record["bytes"] = len(wasm)
            result = self.admin.service.start_rollout(name, wasm, req.params, req.get_header(SIGNATURE_HEADER),
                                                      req.context.admin_sub)
            record.update(generation=result["generation"], signed_by=result["signed_by"], kind=result["kind"],
                          baseline=result["baseline"], steps=result["steps"], key=result["key"], status=201)
        resp.status = 201
        resp.location = f"/_admin/middlewares/{name}/rollout"
        resp.media = result

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        with self.admin.audited(req, "remove", name) as record:
            _no_params(req)
            result = self.admin.service.remove(name, req.context.admin_sub)
            record.update(sha256=result["removed"], generation=result["generation"],
                          ended_rollout=result["ended_rollout"])
        resp.media = result


@falcon.before(authorize)
class VersionsResource:
    """``GET /_admin/middlewares/{name}/versions``: kept versions, newest first, the active one marked."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = self.admin.service.versions(name)


@falcon.before(authorize)
class RollbackResource:
    """``POST /_admin/middlewares/{name}/rollback[?sha256=...]``."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        with self.admin.audited(req, "rollback", name) as record:
            _no_params(req, ("sha256",))
            sha256 = req.get_param("sha256")
            if isinstance(req.params.get("sha256"), list):
                raise AdminBadRequest("parameter 'sha256' is given more than once", parameter="sha256")
            result = self.admin.service.rollback(name, sha256, req.context.admin_sub)
            record.update(sha256=result["sha256"], previous=result["previous"], generation=result["generation"],
                          ended_rollout=result["ended_rollout"])
        resp.media = result


@falcon.before(authorize)
class RolloutResource:
    """``GET /_admin/middlewares/{name}/rollout``: the stage's latest rollout and its analysis."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        _no_params(req)
        resp.media = self.admin.service.rollout(name)


@falcon.before(authorize)
class RolloutControlResource:
    """``POST /_admin/middlewares/{name}/rollout/{promote,abort,pause,resume}[?reason=...]``,
    audited with the operator's token subject and the reason."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def _control(self, req: falcon.Request, resp: falcon.Response, name: str, action: str) -> None:
        with self.admin.audited(req, f"rollout.{action}", name) as record:
            _no_params(req, ("reason",))
            note = _reason(req)
            result = self.admin.service.control_rollout(name, action, req.context.admin_sub, note)
            record.update(generation=result["generation"], candidate=result["candidate"],
                          state=result["state"], reason=result["reason"])
        resp.media = result

    def on_post_promote(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._control(req, resp, name, "promote")

    def on_post_abort(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._control(req, resp, name, "abort")

    def on_post_pause(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._control(req, resp, name, "pause")

    def on_post_resume(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._control(req, resp, name, "resume")


def _reason(req: falcon.Request) -> str | None:
    """An operator's note for a rollout control: one printable line, at most MAX_REASON characters."""
    value = req.params.get("reason")
    if value is None:
        return None
    if isinstance(value, list):
        raise AdminBadRequest("parameter 'reason' is given more than once", parameter="reason")
    if len(value) > MAX_REASON or not value.isprintable():
        raise AdminBadRequest(f"reason must be one printable line of at most {MAX_REASON} characters",
                              parameter="reason")
    return value.strip() or None


@falcon.before(authorize)
class OpenApiResource:
    """``GET /_admin/openapi.json``: the OpenAPI 3.1 document of this API."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin
        self._document = json.dumps(document(), indent=1)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.text = self._document


class UnknownAdminPath:
    """A sink for ``/_admin/...`` paths no route serves: 404 problem (not the app's catch-all)."""

    def __call__(self, req: falcon.Request, resp: falcon.Response, **kwargs: Any) -> None:
        raise AdminNotFound(f"no admin endpoint {req.method} {req.path}; the API is described at "
                            "/_admin/openapi.json")

