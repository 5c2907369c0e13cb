"""Mounting the admin API on a falcon app (``create_app`` does it)."""

from __future__ import annotations

from typing import Any

import falcon

from ..errors import AdminError
from ..settings import AdminSettings
from ..watch import LivePipeline
from .audit_view import AUDIT_PATH, AuditResource
from .auth import Authenticator
from .console import mount_console
from .fleet import FleetResource
from .problems import ADMIN_PREFIX, error_serializer, handle_admin_error
from .resources import (
    Admin, MiddlewareResource, OpenApiResource, OrderResource, PipelineResource, RollbackResource,
    RolloutControlResource, RolloutResource, UnknownAdminPath, VersionsResource,
)
from .signatures import TrustedKeys

PIPELINE_PATH = "/_admin/pipeline"
MIDDLEWARE_PATH = "/_admin/middlewares/{name}"
OPENAPI_PATH = "/_admin/openapi.json"
FLEET_PATH = "/_admin/fleet"
#: ``POST /_admin/middlewares/{name}/rollout/<control>``
ROLLOUT_CONTROLS = ("promote", "abort", "pause", "resume")


class DefaultResponderGuard:
    """falcon middleware: falcon's own responders (``OPTIONS`` and the 405 for a method a
    resource lacks) need the admin token too on resources that hold the ``Admin``.

    NOTE: ``@falcon.before(authorize)`` on a resource class wraps only the ``on_*`` methods
    the class has; falcon adds its default ``OPTIONS`` and 405 responders at ``add_route``
    time, outside the hook, so without this they answer anyone.
    """

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         params: dict) -> None:
        admin = getattr(resource, "admin", None)
        if isinstance(admin, Admin) and not hasattr(resource, f"on_{req.method.lower()}"):
            admin.authorize(req)


def build_admin(live: LivePipeline, settings: AdminSettings) -> Admin:
    """The admin API's shared parts for ``live``; ``ConfigError`` for a bad key or secret."""
    return Admin(live, settings, Authenticator.from_settings(settings), TrustedKeys.from_paths(settings.trusted_keys))


def mount_admin(app: falcon.App, admin: Admin) -> None:
    """Add every admin route to ``app``, with problem+json errors on admin paths."""
    app.add_route(PIPELINE_PATH, PipelineResource(admin))
    app.add_route(f"{PIPELINE_PATH}/order", OrderResource(admin))
    app.add_route(MIDDLEWARE_PATH, MiddlewareResource(admin))
    app.add_route(f"{MIDDLEWARE_PATH}/versions", VersionsResource(admin))
    app.add_route(f"{MIDDLEWARE_PATH}/rollback", RollbackResource(admin))
    app.add_route(f"{MIDDLEWARE_PATH}/rollout", RolloutResource(admin))
    controls = RolloutControlResource(admin)
    for action in ROLLOUT_CONTROLS:
        app.add_route(f"{MIDDLEWARE_PATH}/rollout/{action}", controls, suffix=action)
    app.add_route(OPENAPI_PATH, OpenApiResource(admin))
    app.add_route(AUDIT_PATH, AuditResource(admin))
    mount_console(app)
    app.add_route(FLEET_PATH, FleetResource(admin))
    # NOTE: sinks added later take precedence, so this one wins over an app's catch-all sink
    # (the demo echo) for /_admin/ paths that no route above serves.
    app.add_sink(UnknownAdminPath(), ADMIN_PREFIX)
    app.add_middleware(DefaultResponderGuard())
    app.add_error_handler(AdminError, handle_admin_error)
    # NOTE: wrap the app's current serializer (falcon keeps it in a private attribute) so
    # paths outside /_admin/ keep whatever rendering the app had.
    app.set_error_serializer(error_serializer(app._serialize_error))
