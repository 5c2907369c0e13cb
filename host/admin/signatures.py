"""Signed modules: Ed25519 detached signatures over the module's SHA-256 digest.

What is signed is the **raw 32-byte SHA-256 digest** of the module's bytes (not its hex
form), so ``openssl dgst -sha256 -binary m.wasm > m.digest`` then ``openssl pkeyutl -sign
-rawin -inkey m.key -in m.digest`` makes the same signature as ``mwhost sign``. A signature travels base64-encoded (the
``.sig`` file ``mwhost sign`` writes, the ``X-Mwhost-Signature`` header of an upload).

Keys are PEM: ``NAME.key`` (PKCS#8, unencrypted, mode 0600) and ``NAME.pub``
(SubjectPublicKeyInfo), as ``mwhost keygen`` writes them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import pathlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ConfigError, SignatureRefused
from .auth import load_public_key

SIGNATURE_BYTES = 64


def fingerprint(key: Ed25519PublicKey) -> str:
    """A short name for a public key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(wasm: bytes, key: Ed25519PrivateKey) -> bytes:
    """The detached signature of ``wasm``: Ed25519 over its raw SHA-256 digest."""
    return key.sign(hashlib.sha256(wasm).digest())


def encode_signature(signature: bytes) -> str:
    return base64.b64encode(signature).decode()


def decode_signature(text: str | bytes) -> bytes:
    """A signature from base64 (standard or URL-safe, padding optional) or its 64 raw bytes."""
    if isinstance(text, bytes) and len(text) == SIGNATURE_BYTES:
        return text
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError as err:
            raise SignatureRefused("the signature is neither base64 nor 64 raw bytes", check="signature") from err
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as err:
        raise SignatureRefused(f"the signature is not valid base64: {err}", check="signature") from err
    if len(raw) != SIGNATURE_BYTES:
        raise SignatureRefused(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes, this one is {len(raw)}",
                               check="signature")
    return raw


class TrustedKeys:
    """The publisher keys uploads must be signed with; none configured = unsigned accepted."""

    def __init__(self, keys: tuple[Ed25519PublicKey, ...] = ()) -> None:
        self.keys = keys

    @classmethod
    def from_paths(cls, paths: tuple[pathlib.Path, ...]) -> "TrustedKeys":
        return cls(tuple(load_public_key(path, "[admin] trusted_keys") for path in paths))

    @property
    def required(self) -> bool:
        return bool(self.keys)

    def check(self, sha256_hex: str, signature: str | None) -> str | None:
        """The fingerprint of the key that signed the module, None when signing is not
        required and there is no signature; ``SignatureRefused`` otherwise."""
        if not self.keys:
            return None  # NOTE: nothing to check a signature with; `signed_by: null` says so
        if not signature:
            raise SignatureRefused("this server accepts signed modules only: sign it with "
                                   "`mwhost sign MODULE --key NAME.key` and send the signature in the "
                                   "X-Mwhost-Signature header (mwhost upload --signature MODULE.sig)",
                                   check="signature")
        raw = decode_signature(signature)
        digest = bytes.fromhex(sha256_hex)
        for key in self.keys:
            try:
                key.verify(raw, digest)
            except InvalidSignature:
                continue
            return fingerprint(key)
        raise SignatureRefused(f"the signature does not match module sha256 {sha256_hex} under any of "
                               f"the {len(self.keys)} trusted key(s): signed with another key, or for "
                               "other bytes?", check="signature", sha256=sha256_hex)


def keygen(out: str | os.PathLike) -> tuple[pathlib.Path, pathlib.Path]:
    """Write a new Ed25519 key pair as ``OUT.key`` (mode 0600) and ``OUT.pub``; never overwrites."""
    private_path, public_path = pathlib.Path(f"{out}.key"), pathlib.Path(f"{out}.pub")
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(f"{path} exists; remove it or choose another --out")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out_file:
            out_file.write(private)
        public_path.write_bytes(public)
    except OSError as err:
        raise ConfigError(f"cannot write the key pair {out}.key/.pub: {err.strerror or err}") from err
    return private_path, public_path
