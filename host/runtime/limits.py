"""Per-stage resource limits, as the runtime applies them to each guest call."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What one instance of a stage may use (the reasoning for each default is in
    docs/configuration.md, generated from host/settings.py)."""

    timeout_ms: int = 100
    max_memory_mb: int = 64
    max_output_bytes: int = 1 * MIB
    max_log_bytes: int = 16 * 1024
    #: wasmtime fuel per call (~ one unit per wasm instruction); 0 = no fuel metering
    fuel: int = 0

    @property
    def max_memory_bytes(self) -> int:
        return self.max_memory_mb * MIB
