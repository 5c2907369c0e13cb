"""What ``mwhost serve`` does about the admin API in the master, before any worker starts.

The keys are checked (a bad one stops ``serve`` with a message). With no secret and no
public key, a random HS256 secret is made for this run, like Jupyter's token: it goes into
the settings every worker is built from (fork, no preload), and a ready-made token is
printed. The admin API is never open without auth. With no trusted publisher keys, a
warning says that uploads are accepted unsigned.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from typing import Mapping

from ..settings import Settings
from .auth import DEFAULT_TTL_S, SCOPE, SECRET_ENV, Authenticator, mint_token
from .signatures import TrustedKeys


@dataclasses.dataclass(frozen=True)
class AdminStartup:
    """The settings the workers get, and the token printed for a generated secret (or None)."""

    settings: Settings
    token: str | None
    signed_only: bool


def prepare_admin(settings: Settings, environ: Mapping[str, str] = os.environ) -> AdminStartup:
    admin = settings.admin
    trusted = TrustedKeys.from_paths(admin.trusted_keys)  # ConfigError for a bad key file
    auth = Authenticator.from_settings(admin, environ)
    token = None
    if not auth.enabled:
        secret = secrets.token_urlsafe(32)
        settings = dataclasses.replace(settings, admin=dataclasses.replace(admin, jwt_secret=secret))
        token = mint_token(secret, sub="serve-token", ttl_s=DEFAULT_TTL_S)
    return AdminStartup(settings, token, trusted.required)


def console_link(bind: str, token: str) -> str:
    """The console's login link: the token rides in the fragment, which browsers never send."""
    return f"http://{bind}/_admin/ui/#token={token}"


def announce(startup: AdminStartup, bind: str) -> str:
    """The lines ``mwhost serve`` prints about the admin API."""
    lines = []
    if startup.token is not None:
        hours = DEFAULT_TTL_S // 3600
        lines += [
            f"mwhost: no admin secret is configured (${SECRET_ENV}, [admin] jwt_secret or jwt_public_key), "
            "so this run made a random one.",
            f"mwhost: admin token for this run (scope {SCOPE}, valid {hours} h, void when serve stops):",
            "",
            f"    export MWHOST_URL=http://{bind} MWHOST_TOKEN={startup.token}",
            f"    curl -H \"Authorization: Bearer $MWHOST_TOKEN\" $MWHOST_URL/_admin/pipeline",
            "",
            "mwhost: browser console (the token stays in the #fragment, which no request carries):",
            "",
            f"    {console_link(bind, startup.token)}",
            "",
        ]
    if not startup.signed_only:
        lines.append("mwhost: WARNING: no [admin] trusted_keys configured: module uploads are accepted unsigned")
    return "\n".join(lines)
