"""Errors of the admin API as ``application/problem+json`` (RFC 9457).

``AdminError`` (host/errors.py) renders itself; this module puts it on the wire, and makes
falcon's own errors on admin paths (405, 404) and unexpected failures problems too. Other
paths keep the app's own error rendering.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any, Callable

import falcon

from ..errors import AdminError, AdminUnauthorized
from .auth import SCOPE

logger = logging.getLogger("mwhost.admin")

PROBLEM_JSON = "application/problem+json"
ADMIN_PREFIX = "/_admin/"


def render(resp: falcon.Response, problem: dict[str, Any]) -> None:
    resp.status = problem["status"]
    resp.content_type = PROBLEM_JSON
    resp.text = json.dumps(problem)


def handle_admin_error(req: falcon.Request, resp: falcon.Response, err: AdminError, params: dict) -> None:
    """falcon error handler for ``AdminError``."""
    if isinstance(err, AdminUnauthorized):
        # RFC 6750 §3: tell the client how to authenticate
        resp.set_header("WWW-Authenticate", f'Bearer realm="mwhost-admin", scope="{SCOPE}"')
    if err.status >= 500:
        logger.error("admin %s %s failed: %s", req.method, req.path, err.detail)
    render(resp, err.problem())


def error_serializer(fallback: Callable) -> Callable:
    """A falcon error serializer: problem+json on admin paths, ``fallback`` elsewhere."""
    def serialize(req: falcon.Request, resp: falcon.Response, exception: falcon.HTTPError) -> None:
        if not req.path.startswith(ADMIN_PREFIX):
            fallback(req, resp, exception)
            return
        status = exception.status_code
        detail = exception.description
        if not detail and status == 405:
            allowed = (exception.headers or {}).get("Allow") or resp.get_header("Allow") or "?"
            detail = f"{req.method} is not allowed on {req.path}; allowed: {allowed}"
        problem = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
                   "detail": detail or HTTPStatus(status).description}
        resp.content_type = PROBLEM_JSON
        resp.text = json.dumps(problem)
    return serialize
