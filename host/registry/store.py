"""The module store: modules content-addressed by sha256 and immutable."""

from __future__ import annotations

import hashlib
import pathlib

from ..errors import RegistryError
from .files import write_atomic


class ModuleStore:
    """``<data_dir>/modules/<sha256>.wasm``; a stored module is never rewritten."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = folder

    def path(self, sha256: str) -> pathlib.Path:
        return self.folder / f"{sha256}.wasm"

    def put(self, wasm: bytes, sha256: str | None = None) -> str:
        """Store ``wasm`` (``sha256`` is its digest when the caller has it) and verify the
        file by reading it back; RegistryError when it cannot be written whole (disk full,
        read-only folder). A stored file that does not match its name is replaced."""
        sha256 = sha256 or hashlib.sha256(wasm).hexdigest()
        path = self.path(sha256)
        if self._holds(path, sha256):
            return sha256
        try:
            write_atomic(path, wasm)
        except OSError as err:
            raise RegistryError(f"cannot store module {sha256[:12]} in {self.folder}: {err.strerror or err}") from err
        if not self._holds(path, sha256):
            raise RegistryError(f"module {sha256[:12]} did not read back whole from {self.folder}")
        return sha256

    def get(self, sha256: str) -> bytes:
        """The module's bytes, checked against their name: a damaged file is never served."""
        try:
            wasm = self.path(sha256).read_bytes()
        except FileNotFoundError as err:
            raise RegistryError(f"no module {sha256} in {self.folder}") from err
        except OSError as err:
            raise RegistryError(f"cannot read module {sha256[:12]} in {self.folder}: {err.strerror}") from err
        if hashlib.sha256(wasm).hexdigest() != sha256:
            raise RegistryError(f"module file {self.path(sha256)} does not match its sha256 (damaged)")
        return wasm

    def has(self, sha256: str) -> bool:
        """Whether the store holds module ``sha256`` whole."""
        return self._holds(self.path(sha256), sha256)

    def put_signature(self, sha256: str, signature: str) -> None:
        """Keep a module's detached publisher signature beside it (a fleet hands it on)."""
        try:
            write_atomic(self.folder / f"{sha256}.sig", signature.encode())
        except OSError as err:
            raise RegistryError(f"cannot store the signature of {sha256[:12]} in {self.folder}: "
                                f"{err.strerror or err}") from err

    def signature(self, sha256: str) -> str | None:
        """The module's kept signature, None when it came without one."""
        try:
            return (self.folder / f"{sha256}.sig").read_text().strip() or None
        except OSError:
            return None

    @staticmethod
    def _holds(path: pathlib.Path, sha256: str) -> bool:
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest() == sha256
        except OSError:
            return False


def read_module_file(path: pathlib.Path) -> bytes:
    """The bytes of a module file named in a config, or a RegistryError saying why not."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise RegistryError(f"cannot read module {path}: {err.strerror}") from err
