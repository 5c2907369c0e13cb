"""Pipelines of stages and the holder that swaps them."""

from .admission import Admitted, admit, check_binary
from .build import build_from_manifest, build_pipeline
from .holder import PipelineHolder
from .messages import RequestState, ResponseState, edit_headers
from .pipeline import Pipeline, response_phase
from .stage import Stage

__all__ = ["Admitted", "Pipeline", "PipelineHolder", "RequestState", "ResponseState", "Stage", "admit",
           "build_from_manifest", "build_pipeline", "check_binary", "edit_headers", "response_phase"]
