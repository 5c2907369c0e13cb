"""Admin API auth: ``Authorization: Bearer <JWT>``, HS256 with a secret or EdDSA with a public key.

Every token must carry ``exp`` and the scope ``mwhost:admin`` (in ``scope``, space-separated
as in OAuth 2, or as a list in ``scope`` or ``scp``). Each configured key is used with its own
algorithm only (RFC 8725 §2.1: the token's ``alg`` picks among the configured pairs, never
the other way round). With no key configured the admin API stays shut (503), never open.
"""

from __future__ import annotations

import os
import pathlib
import time
from typing import Any, Mapping

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import AdminForbidden, AdminUnauthorized, AdminUnavailable, ConfigError
from ..settings import AdminSettings

SCOPE = "mwhost:admin"
SECRET_ENV = "MWHOST_ADMIN_JWT_SECRET"
#: RFC 7518 §3.2: an HS256 key must have at least as many bits as the hash
MIN_SECRET_BYTES = 32
#: lifetime of the token ``mwhost serve`` prints for a secret it generated
DEFAULT_TTL_S = 12 * 3600

_HOW_TO_CONFIGURE = (f"set ${SECRET_ENV} (at least {MIN_SECRET_BYTES} bytes) or [admin] jwt_secret / "
                     "jwt_public_key in the config; `mwhost serve` generates a secret and prints a token "
                     "when none is set")


class Authenticator:
    """Checks bearer tokens against the configured keys; returns the token's claims."""

    def __init__(self, secret: str = "", public_key: Ed25519PublicKey | None = None) -> None:
        if secret and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"the admin JWT secret is {len(secret.encode())} bytes long; "
                              f"HS256 needs at least {MIN_SECRET_BYTES}")
        self._keys: dict[str, Any] = {}
        if secret:
            self._keys["HS256"] = secret
        if public_key is not None:
            self._keys["EdDSA"] = public_key

    @classmethod
    def from_settings(cls, admin: AdminSettings, environ: Mapping[str, str] = os.environ) -> "Authenticator":
        """HS256 from ``$MWHOST_ADMIN_JWT_SECRET`` (wins) or ``jwt_secret``; EdDSA from
        ``jwt_public_key``. Raises ``ConfigError`` for a short secret or an unreadable key."""
        secret = environ.get(SECRET_ENV) or admin.jwt_secret
        key = load_public_key(admin.jwt_public_key, "[admin] jwt_public_key") if admin.jwt_public_key else None
        return cls(secret, key)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The claims of a valid admin token from an ``Authorization`` header value."""
        claims = self.claims(authorization)
        self.check_scope(claims)
        return claims

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The claims of a valid token (signature, ``exp``), whatever its scope."""
        if not self._keys:
            raise AdminUnavailable(f"the admin API is shut: no way to check tokens is configured; {_HOW_TO_CONFIGURE}")
        return self._decode(_bearer(authorization))

    @staticmethod
    def check_scope(claims: Mapping[str, Any]) -> None:
        scopes = _scopes(claims)
        if SCOPE not in scopes:
            raise AdminForbidden(f"the token (sub {claims.get('sub', '?')!r}) lacks the scope {SCOPE!r}; "
                                 f"it has {sorted(scopes) or 'none'}", required_scope=SCOPE)

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            alg = jwt.get_unverified_header(token).get("alg")
        except jwt.DecodeError as err:
            raise AdminUnauthorized(f"the bearer token is not a JWT: {err}") from err
        except jwt.PyJWTError as err:  # e.g. a "crit" header naming an extension nobody here knows
            raise AdminUnauthorized(f"the token's header is refused: {err}") from err
        key = self._keys.get(alg) if isinstance(alg, str) else None
        if key is None:
            raise AdminUnauthorized(f"tokens signed with {alg!r} are not accepted here; "
                                    f"this server accepts {' or '.join(self._keys)}")
        try:
            return jwt.decode(token, key, algorithms=[alg], options={"require": ["exp"]})
        except jwt.ExpiredSignatureError as err:
            raise AdminUnauthorized("the token has expired; get a new one (`mwhost token`, or the one "
                                    "`mwhost serve` printed at its last start)") from err
        except jwt.MissingRequiredClaimError as err:
            raise AdminUnauthorized(f"the token has no {err.claim!r} claim; admin tokens must expire") from err
        except jwt.InvalidSignatureError as err:
            raise AdminUnauthorized("the token's signature does not match this server's key (a token "
                                    "from another server, or from an earlier run with a generated secret?)") from err
        except jwt.PyJWTError as err:
            raise AdminUnauthorized(f"the token is invalid: {err}") from err
        except (ValueError, TypeError) as err:
            # NOTE: whatever a forged token trips over in the library is still a bad token (401)
            raise AdminUnauthorized(f"the token is malformed: {err}") from err


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AdminUnauthorized("this call needs an admin token: send 'Authorization: Bearer <JWT>' "
                                f"with the scope {SCOPE!r}")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AdminUnauthorized("the Authorization header must be 'Bearer <JWT>'")
    return token.strip()


def _scopes(claims: Mapping[str, Any]) -> set[str]:
    scopes: set[str] = set()
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            scopes.update(value.split())
        elif isinstance(value, list):
            scopes.update(v for v in value if isinstance(v, str))
    return scopes


def mint_token(key: str | Ed25519PrivateKey, *, sub: str = "admin", ttl_s: float = DEFAULT_TTL_S,
               scope: str = SCOPE, now: float | None = None) -> str:
    """A signed admin token: HS256 for a secret, EdDSA for an Ed25519 private key."""
    issued = int(now if now is not None else time.time())
    claims = {"sub": sub, "scope": scope, "iat": issued, "exp": issued + int(ttl_s)}
    algorithm = "HS256" if isinstance(key, str) else "EdDSA"
    return jwt.encode(claims, key, algorithm=algorithm)


def load_public_key(path: pathlib.Path, what: str) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file; ``ConfigError`` naming ``what`` otherwise."""
    try:
        key = serialization.load_pem_public_key(pathlib.Path(path).read_bytes())
    except OSError as err:
        raise ConfigError(f"{what}: cannot read {path}: {err.strerror}") from err
    except ValueError as err:
        raise ConfigError(f"{what}: {path} is not a PEM public key: {err}") from err
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{what}: {path} is not an Ed25519 public key (`mwhost keygen` makes one)")
    return key


def load_private_key(path: pathlib.Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (as ``mwhost keygen`` writes it)."""
    try:
        key = serialization.load_pem_private_key(pathlib.Path(path).read_bytes(), password=None)
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from err
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{path} is not an unencrypted PEM private key: {err}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key (`mwhost keygen` makes one)")
    return key
