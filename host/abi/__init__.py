"""ABI v1: the msgpack messages between host and guest (pure Python; see abi/ABI.md)."""

from .codec import ABI_VERSION, Codec
from .messages import Action, ResponseAction

__all__ = ["ABI_VERSION", "Action", "Codec", "ResponseAction"]
