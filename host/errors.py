"""The exception tree of mwhost. Every error the host raises on purpose is one of these::

    HostError
    ├── ConfigError            a config file or settings object is invalid (names file, table, key)
    ├── AbiError               a guest broke ABI v1: bad output, bad pointer, bad message
    │   └── AbiDecodeError     the guest's bytes are not a valid message
    ├── GuestError             the guest itself failed
    │   ├── GuestTrap          it trapped (panic, unreachable, out-of-bounds, out of memory)
    │   ├── GuestTimeout       it ran past its stage's timeout
    │   ├── GuestOutOfFuel     it used up its fuel for the call
    │   └── GuestLoadError     it could not be loaded or instantiated
    │       └── ModuleRefused  it breaks the ABI's export/import rules or version
    ├── RegistryError          the module store or cache failed
    │   └── BlobRefused        a fleet blob does not match its sha256 or signature (never served)
    ├── StageLoadError         a configured stage could not be loaded (names stage and module)
    ├── DropRejected           a file in the drop folder was not applied (says why)
    └── AdminError             an admin API call was refused; renders itself as problem+json
        ├── AdminBadRequest        400 not a module, a bad parameter, bad JSON
        ├── AdminUnauthorized      401 no token, or a bad or expired one
        ├── AdminForbidden         403 the token lacks the scope
        │   └── SignatureRefused   403 the module is unsigned or badly signed
        ├── AdminNotFound          404 no such stage or version
        ├── AdminConflict          409 nothing to roll back to, or a stale order
        ├── ModuleTooLarge         413 the module is over the upload limit
        ├── UnsupportedModuleType  415 the body is not sent as application/wasm
        ├── ModuleRejected         422 the module failed a check before serving (names which)
        ├── AdminUnavailable       503 the admin API has no way to check tokens
        ├── DataDirUnavailable     503 the data dir cannot be written (disk full, read-only)
        └── FleetUnavailable       503 the fleet's Redis cannot be reached; nothing changed
            └── FleetReseeding     503 the fleet store is being re-seeded (Redis restarted); nothing changed

Admission (``host/pipeline/admission.py``) refuses a module with ``AdminBadRequest`` (checks
``binary``, ``compile``) or ``ModuleRejected`` (``abi``, ``init``, ``probe``), whoever brought
it: the admin API renders them, the drop folder and ``mwhost validate`` print their detail.

A request-time failure of one stage (``AbiError`` or ``GuestError``) fails that request by the
stage's ``on_error`` policy; it never escapes into the worker. An ``AdminError`` means the call
changed nothing.
"""

from __future__ import annotations

from typing import Any


class HostError(Exception):
    """Base of every error mwhost raises on purpose."""


class ConfigError(HostError):
    """Invalid configuration; the message names the file, the table and the key."""


class AbiError(HostError):
    """A guest broke the ABI v1 contract."""


class AbiDecodeError(AbiError):
    """A guest's output is not a well-formed ABI v1 message."""


class GuestError(HostError):
    """A guest failed while the host called it."""

    #: short label for logs and metrics: "trap", "timeout", "load", ...
    kind = "guest"


class GuestTrap(GuestError):
    """The guest trapped; ``trap_code`` names the wasmtime trap code when there is one."""

    kind = "trap"

    def __init__(self, message: str, trap_code: str | None = None) -> None:
        super().__init__(message)
        self.trap_code = trap_code


class GuestTimeout(GuestError):
    """The guest ran past its stage's wall-time limit and was interrupted."""

    kind = "timeout"


class GuestOutOfFuel(GuestError):
    """The guest used up the fuel its stage allows per call."""

    kind = "fuel"


class GuestLoadError(GuestError):
    """The module could not be compiled, instantiated or initialised."""

    kind = "load"


class ModuleRefused(GuestLoadError):
    """The module breaks the ABI: a missing or mistyped export, a foreign import, a wrong version."""

    kind = "refused"
    #: the ABI whose rules it broke ("v1", "http-wasm"); None when no ABI could be told
    #: (a module mixing both, or speaking neither)
    abi: str | None = None


class RegistryError(HostError):
    """The module store or compile cache failed."""


class StageLoadError(HostError):
    """A configured stage could not be loaded; the message names the stage and its module."""


class DropRejected(HostError):
    """A file in the drop folder was not applied; the message says why."""


class AdminError(HostError):
    """An admin API call was refused and changed nothing. Renders itself as an RFC 9457
    problem: ``status``, ``title``, a ``detail`` a person can act on, and extension members
    (``check``, ``stage``...) a client can act on."""

    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str, **members: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.members = members

    def problem(self) -> dict[str, Any]:
        return {"type": "about:blank", "title": self.title, "status": self.status,
                "detail": self.detail, **self.members}


class AdminBadRequest(AdminError):
    """The call is malformed: not a module, an unknown or invalid parameter, bad JSON."""

    status, title = 400, "Bad Request"


class AdminUnauthorized(AdminError):
    """No bearer token, or one that is malformed, badly signed or expired."""

    status, title = 401, "Unauthorized"


class AdminForbidden(AdminError):
    """A valid token without the admin scope."""

    status, title = 403, "Forbidden"


class SignatureRefused(AdminForbidden):
    """Trusted publisher keys are configured and the module is unsigned or badly signed."""


class AdminNotFound(AdminError):
    """No such stage, or no such kept version of it."""

    status, title = 404, "Not Found"


class AdminConflict(AdminError):
    """The call does not fit the current pipeline (nothing to roll back to, a stale order)."""

    status, title = 409, "Conflict"


class ModuleTooLarge(AdminError):
    """The uploaded module is larger than ``[admin] max_module_mb``."""

    status, title = 413, "Content Too Large"


class UnsupportedModuleType(AdminError):
    """The upload's body is not declared as ``application/wasm``."""

    status, title = 415, "Unsupported Media Type"


class ModuleRejected(AdminError):
    """The module failed a check before serving: ABI, imports, instantiation, ``mw_init`` or a
    probe request; ``check`` names which."""

    status, title = 422, "Unprocessable Content"


class AdminUnavailable(AdminError):
    """The admin API cannot check tokens (no secret or public key configured): it stays shut."""

    status, title = 503, "Service Unavailable"


class DataDirUnavailable(AdminError):
    """The module, its compiled artifact or the manifest could not be written whole (disk
    full, read-only data dir); nothing was activated."""

    status, title = 503, "Service Unavailable"


class FleetUnavailable(AdminError):
    """The fleet's Redis cannot be reached (or answers with an error): a write to the fleet
    changes nothing, here or anywhere; every host keeps serving its local copy."""

    status, title = 503, "Service Unavailable"


class FleetReseeding(FleetUnavailable):
    """The fleet store is empty, behind this host, or was re-seeded moments ago (a Redis
    restarted): writes wait until every live host has offered its copy, so none is lost."""


class BlobRefused(RegistryError):
    """A module blob from the fleet store does not match its sha256 (or its signature): it is
    never written to the local store nor served."""
