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
    ├── StageLoadError         a configured stage could not be loaded (names stage and module)
    └── DropRejected           a file in the drop folder was not applied (says why)

A request-time failure of one stage (``AbiError`` or ``GuestError``) fails that request by the
stage's ``on_error`` policy; it never escapes into the worker.
"""

from __future__ import annotations


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


class RegistryError(HostError):
    """The module store or compile cache failed."""


class StageLoadError(HostError):
    """A configured stage could not be loaded; the message names the stage and its module."""


class DropRejected(HostError):
    """A file in the drop folder was not applied; the message says why."""
