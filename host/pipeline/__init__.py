"""Pipelines of stages and the holder that swaps them."""

from .build import build_from_manifest, build_pipeline
from .holder import PipelineHolder
from .messages import RequestState, ResponseState, edit_headers
from .pipeline import Pipeline, response_phase
from .stage import Stage

__all__ = ["Pipeline", "PipelineHolder", "RequestState", "ResponseState", "Stage",
           "build_from_manifest", "build_pipeline", "edit_headers", "response_phase"]
