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

    def put(self, wasm: bytes) -> str:
        sha256 = hashlib.sha256(wasm).hexdigest()
        path = self.path(sha256)
        if not path.exists():
            write_atomic(path, wasm)
        return sha256

    def get(self, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError as err:
            raise RegistryError(f"no module {sha256} in {self.folder}") from err


def read_module_file(path: pathlib.Path) -> bytes:
    """The bytes of a module file named in a config, or a RegistryError saying why not."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise RegistryError(f"cannot read module {path}: {err.strerror}") from err
