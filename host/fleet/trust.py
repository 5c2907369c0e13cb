"""Trusted-key signatures checked on every fleet host before a module from Redis is stored.

The same rule as an upload's (host/admin/signatures.py): Ed25519 over the module's raw
SHA-256 digest, base64; with ``[admin] trusted_keys`` set, a module without a valid
signature under one of them is refused.
"""

from __future__ import annotations

import base64
import binascii
import pathlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from typing import TYPE_CHECKING

from ..errors import BlobRefused, ConfigError

if TYPE_CHECKING:  # NOTE: blobs imports redis: the drop folder checks signatures without a fleet
    from .blobs import Verify


def signature_check(paths: tuple[pathlib.Path, ...]) -> "Verify | None":
    """``verify(sha256, signature)`` for these trusted keys; None when there are none."""
    if not paths:
        return None
    keys = [_public_key(path) for path in paths]

    def verify(sha256: str, signature: str | None) -> None:
        if not signature:
            raise BlobRefused(f"module {sha256[:12]} has no signature and this host accepts signed modules only")
        try:
            raw = base64.b64decode(signature + "=" * (-len(signature) % 4))
        except (binascii.Error, ValueError) as err:
            raise BlobRefused(f"module {sha256[:12]}: its signature is not base64") from err
        for key in keys:
            try:
                key.verify(raw, bytes.fromhex(sha256))
                return
            except InvalidSignature:
                continue
        raise BlobRefused(f"module {sha256[:12]}: its signature matches none of the {len(keys)} trusted key(s)")
    return verify


def _public_key(path: pathlib.Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as err:
        raise ConfigError(f"[admin] trusted_keys: cannot load {path}: {err}") from err
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"[admin] trusted_keys: {path} is not an Ed25519 public key")
    return key
