"""Per-stage resource limits, as the runtime applies them to each guest call."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What one instance of a stage may use.

    Defaults: 100 ms covers a JWT check or a regex table with a wide margin while keeping a
    stuck guest from holding a worker; 64 MiB is far above what the examples touch (Rust ~1
    MiB, Go ~2 MiB per instance) yet stops a memory bomb long before it hurts the host; 1 MiB
    of output is larger than any sane header set or short body; 16 KiB of log per call keeps a
    chatty guest from flooding the host log.
    """

    timeout_ms: int = 100
    max_memory_mb: int = 64
    max_output_bytes: int = 1 * MIB
    max_log_bytes: int = 16 * 1024

    @property
    def max_memory_bytes(self) -> int:
        return self.max_memory_mb * MIB
