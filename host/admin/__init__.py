"""The admin API: upload, inspect, roll back and remove middleware over HTTP, behind JWT auth.

``auth`` (bearer tokens), ``signatures`` (Ed25519 over a module's sha256), ``changes``
(manifest edits), ``service`` (the operations; admission is the pipeline layer's), ``resources``
+ ``routes`` (falcon), ``problems`` (problem+json), ``openapi``, ``audit`` and ``audit_view``
(``GET /_admin/audit``), ``console`` (the browser console at ``/_admin/ui/``, files in ``ui/``).
"""

from .audit import AuditLog
from .auth import SCOPE, SECRET_ENV, Authenticator, mint_token
from .resources import Admin, authorize
from .routes import build_admin, mount_admin
from .signatures import TrustedKeys, keygen, sign
from .startup import announce, prepare_admin

__all__ = ["SCOPE", "SECRET_ENV", "Admin", "AuditLog", "Authenticator", "TrustedKeys", "announce",
           "authorize", "build_admin", "keygen", "mint_token", "mount_admin",
           "prepare_admin", "sign"]
