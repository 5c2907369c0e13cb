"""The Falcon side: the middleware, the host app, health and the demo echo."""

from .app import HEALTH_PATH, create_app, live_pipeline, load_live, resolve_settings
from .demo import EchoSink
from .health import HealthResource
from .middleware import WasmMiddleware

__all__ = ["HEALTH_PATH", "EchoSink", "HealthResource", "WasmMiddleware", "create_app",
           "live_pipeline", "load_live", "resolve_settings"]
