"""Shadow runs: a candidate sees a copy of a share of requests after the response was sent.

A ``ShadowStage`` serves every request with the baseline, exactly as a plain stage would.
For a request in the shadow share (bucketed like a canary, host/pipeline/bucket.py) it
copies the request the baseline saw and keeps ``(copy, baseline outcome)`` on the request
state. Once the response has been sent, the web layer hands those jobs to this process's
``ShadowRunner``: one daemon thread behind a bounded queue (a full queue drops the job and
counts it, so a slow candidate never slows a client). The runner calls the candidate (its
own instance pool) with the copy, compares its action with the baseline's field by field
(``compare``) and counts same / different / failed into ``TALLIES.shadow[count key]``,
with the last DIFFERENCES_KEPT differences. The candidate's action is never applied.
docs/rollouts.md, "Shadow runs".
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from typing import Any, Iterable

from ..abi.messages import Action
from .bucket import BUCKETS, bucket, key_reader
from .failures import failure_kind
from .messages import RequestState
from .rollout_stage import TALLIES
from .stage import STAGE_FAILURES, Stage

logger = logging.getLogger("mwhost.pipeline")

#: jobs waiting for the runner in one process; more are dropped (and counted)
QUEUE_SIZE = 256
#: differences each process keeps per shadow (the newest)
DIFFERENCES_KEPT = 20
#: WSGI environ key holding a request's jobs until the server has sent the response
ENV_KEY = "mwhost.shadow_jobs"
#: what each shadow counts
OUTCOMES = ("same", "different", "failed", "dropped")


class Failure:
    """A stage call that failed instead of answering an action (its failure kind)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind


class ShadowJob:
    """One shadowed request: the copy the baseline saw, and what the baseline answered."""

    __slots__ = ("shadow", "request", "baseline", "record_values")

    def __init__(self, shadow: "ShadowStage", request: RequestState, baseline: Action | Failure) -> None:
        self.shadow = shadow
        self.request = request
        self.baseline = baseline
        self.record_values = False   # [rollout] record_values, set when the web layer hands it over


class ShadowStage:
    """The baseline serving every request, with a share of them copied for the candidate;
    looks like a Stage to the pipeline (``call_request``, ``call_response``, ``failed``,
    ``close``)."""

    __slots__ = ("name", "baseline", "candidate", "threshold", "salt", "read_key", "count_key",
                 "has_on_response", "version", "fail_open", "key", "__weakref__")

    def __init__(self, baseline: Stage, candidate: Stage, *, percent: int, salt: str, key: str,
                 step_key: str) -> None:
        self.name = baseline.name
        self.baseline = baseline
        self.candidate = candidate
        self.threshold = percent * 100   # buckets below this are shadowed
        self.salt = salt
        self.read_key = key_reader(key)
        self.count_key = step_key
        # NOTE: only the baseline's phases run on the request: a shadow never changes a response
        self.has_on_response = baseline.has_on_response
        self.version = baseline.version
        self.fail_open = baseline.fail_open
        self.key = ("shadow", baseline.key, candidate.key, percent, salt, key, step_key)

    def shadowed(self, state: RequestState) -> bool:
        """Whether this request is in the shadow share (the force header does not apply: a
        shadow never serves)."""
        if self.threshold >= BUCKETS:
            return True  # PERF: 100% needs no hash
        value = self.read_key(state)
        if value is None:
            value = state.remote_addr  # NOTE: requests without the key are bucketed by address
        return bucket(self.salt, value) < self.threshold

    def call_request(self, state: RequestState) -> Action:
        if not self.shadowed(state):
            return self.baseline.call_request(state)
        copy = snapshot(state)
        try:
            action = self.baseline.call_request(state)
        except STAGE_FAILURES as err:
            _keep(state, ShadowJob(self, copy, Failure(failure_kind(err))))
            raise
        _keep(state, ShadowJob(self, copy, action))
        return action

    def call_response(self, state, response):
        return self.baseline.call_response(state, response)

    def failed(self, err: Exception, phase: str, state: RequestState | None = None) -> bool:
        return self.baseline.failed(err, phase, state)

    def close(self) -> None:
        self.baseline.close()
        self.candidate.close()


def snapshot(state: RequestState) -> RequestState:
    """A copy of the request as a stage sees it now (headers and ctx copied: later stages
    edit the original)."""
    copy = RequestState(state.method, state.path, state.query, list(state.headers),
                        state.remote_addr, state.scheme)
    copy.ctx = dict(state.ctx)
    return copy


def _keep(state: RequestState, job: ShadowJob) -> None:
    if state.shadows is None:
        state.shadows = [job]
    else:
        state.shadows.append(job)


# ---- comparing ------------------------------------------------------------------------


def view(outcome: Action | Failure, record_values: bool = False) -> dict[str, Any]:
    """What is compared of an outcome, field by field. Header and ctx values, and the query,
    appear only with ``record_values`` (a digest of the query stands in without); a respond
    body is compared by digest, never shown."""
    if isinstance(outcome, Failure):
        return {"action": "failed"}
    if outcome.respond:
        return {"action": "respond", "status": outcome.status,
                "headers": _headers(outcome.headers, record_values), "body": _digest(outcome.body)}
    return {"action": "continue",
            "set_headers": _headers(outcome.set_headers, record_values),
            "remove_headers": sorted(set(outcome.remove_headers or ())),
            "response_headers": _headers(outcome.response_headers, record_values),
            "path": outcome.path,
            "query": outcome.query if record_values or outcome.query is None else _digest(outcome.query.encode()),
            "ctx": dict(sorted((outcome.ctx or {}).items())) if record_values else sorted(outcome.ctx or ())}


def compare(baseline: Action | Failure, candidate: Action | Failure,
            record_values: bool = False) -> dict[str, tuple[Any, Any]]:
    """The fields in which two outcomes differ: ``{field: (baseline's, candidate's)}``, empty
    when they are the same. Different action kinds differ in ``action`` only."""
    ours, theirs = view(baseline, record_values), view(candidate, record_values)
    if ours["action"] != theirs["action"]:
        return {"action": (ours["action"], theirs["action"])}
    return {name: (value, theirs[name]) for name, value in ours.items() if theirs[name] != value}


def _headers(headers, record_values: bool) -> list:
    if not headers:
        return []
    if record_values:
        return sorted([str(name), str(value)] for name, value in headers)
    return sorted({str(name) for name, _ in headers})


def _digest(raw: bytes | None) -> str | None:
    return None if raw is None else "sha256:" + hashlib.sha256(raw).hexdigest()[:16]


# ---- counting ---------------------------------------------------------------------------

_RESULTS_LOCK = threading.Lock()


def count(count_key: str, outcome: str, difference: dict[str, Any] | None = None) -> None:
    """Add one ``outcome`` (same, different, failed, dropped) to a shadow's results.

    NOTE: each update replaces the key's dict (copy on write): the counts flusher reads
    ``TALLIES.shadow`` from another thread without this lock and must never see one half
    updated."""
    with _RESULTS_LOCK:
        old = TALLIES.shadow.get(count_key) or empty_results()
        new = {**old, outcome: old.get(outcome, 0) + 1}
        if difference is not None:
            new["differences"] = [*old.get("differences", ())[-(DIFFERENCES_KEPT - 1):], difference]
        TALLIES.shadow[count_key] = new


def empty_results() -> dict[str, Any]:
    return {**{outcome: 0 for outcome in OUTCOMES}, "differences": []}


def run(job: ShadowJob) -> str:
    """Call the candidate with the job's copy, compare, count; returns the outcome counted.

    A failed candidate call is counted and reported through the candidate's rate-limited
    failure log; its instance is discarded by the call (the next call gets a fresh one)."""
    shadow = job.shadow
    try:
        action = shadow.candidate.on_request(job.request)
    except STAGE_FAILURES as err:
        shadow.candidate.failed(err, "request", job.request)
        count(shadow.count_key, "failed")
        return "failed"
    if job.request.held:  # an http-wasm candidate keeps its instance for a response phase that never comes
        shadow.candidate.release(job.request)
    differences = compare(job.baseline, action, job.record_values)
    if not differences:
        count(shadow.count_key, "same")
        return "same"
    count(shadow.count_key, "different", {
        "at": time.time(),
        "fields": list(differences),
        "request": {"method": job.request.method, "path": job.request.path},
        "baseline": {name: pair[0] for name, pair in differences.items()},
        "candidate": {name: pair[1] for name, pair in differences.items()},
    })
    return "different"


# ---- the runner -------------------------------------------------------------------------


class ShadowRunner:
    """One process's shadow calls: a bounded queue served by one daemon thread, started on
    the first job (in each process: gunicorn forks workers after import)."""

    def __init__(self, size: int = QUEUE_SIZE) -> None:
        self._queue: queue.Queue[ShadowJob] = queue.Queue(size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        #: True when the server calls ``release`` once a response is sent (mwhost serve's
        #: post_request hook); otherwise ``hand_off`` submits at once
        self.after_send = False

    def hand_off(self, env: dict, jobs: list[ShadowJob], record_values: bool) -> None:
        """A finished request's jobs (the web layer calls it from process_response): kept
        in the WSGI environ until the server has sent the response, or submitted now."""
        for job in jobs:
            job.record_values = record_values
        if self.after_send:
            env[ENV_KEY] = jobs
        else:
            self.submit(jobs)

    def release(self, env: dict) -> None:
        """Submit the jobs a sent response left in ``env`` (never raises into the server)."""
        jobs = env.pop(ENV_KEY, None)
        if jobs:
            self.submit(jobs)

    def submit(self, jobs: Iterable[ShadowJob]) -> None:
        """Queue jobs for the runner thread; with the queue full a job is dropped and counted."""
        self._start()
        for job in jobs:
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                count(job.shadow.count_key, "dropped")

    def idle(self, timeout: float) -> bool:
        """Wait until every submitted job has run (tests, shutdown); False on timeout."""
        done = self._queue.all_tasks_done
        with done:
            return done.wait_for(lambda: not self._queue.unfinished_tasks, timeout)

    def _start(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="mwhost-shadow", daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            try:
                run(job)
            except Exception:  # noqa: BLE001 - a bug here must not end shadowing for the process
                logger.exception("a shadow call of stage %s failed in the host", job.shadow.name)
            finally:
                self._queue.task_done()


#: this process's shadow runner
RUNNER = ShadowRunner()
