"""OpenTelemetry spans per stage call, when (and only when) the SDK is configured.

``stage_tracer()`` is asked once per stage when the stage is built: with no SDK tracer
provider installed it returns None and the stage keeps its untraced call path, so tracing
costs nothing per request unless it is on. The opentelemetry packages are optional.
"""

from __future__ import annotations

from typing import Any


def stage_tracer() -> Any | None:
    """The SDK tracer for stage spans, or None when no SDK provider is configured."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        return None
    return provider.get_tracer("mwhost")


def parent_context(traceparent: str | None) -> Any:
    """The OpenTelemetry context of an incoming W3C ``traceparent`` (or the current one)."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if not traceparent:
        return None
    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})
