"""The Falcon side: the middleware, the host app and the demo echo."""

from .app import create_app, load_holder, resolve_settings
from .demo import EchoSink
from .middleware import WasmMiddleware

__all__ = ["EchoSink", "WasmMiddleware", "create_app", "load_holder", "resolve_settings"]
