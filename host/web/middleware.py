"""``WasmMiddleware``: the pipeline as a Falcon middleware any ``falcon.App`` can add."""

from __future__ import annotations

import logging

import falcon
from falcon.util.uri import parse_query_string

from ..abi.messages import CONTINUE
from ..logs import REQUEST, json_enabled
from ..pipeline import PipelineHolder, RequestState, ResponseState, response_phase
from ..pipeline.messages import STATE_PROTOTYPE, problem
from ..pipeline.shadow import RUNNER as SHADOWS
from ..runtime import accel
from .wsgi_headers import ENVIRON_KEYS, write_environ_headers

logger = logging.getLogger("mwhost.web")

_STATE = "mwhost"  # attribute on req.context holding the RequestState
ADMIN_PREFIX = "/_admin/"
METRICS_PATH = "/metrics"


class WasmMiddleware:
    """Runs the current pipeline around every request.

    Request phase in ``process_request`` (edits reach routing and the responder; ``respond``
    short-circuits), response phase in ``process_response`` (reverse order). The request's
    ``ctx`` is at ``req.context.mwhost.ctx``.
    """

    def __init__(self, holder: PipelineHolder) -> None:
        # NOTE: chosen once: request context for log lines costs only where logs are JSON
        self._log_context = json_enabled()
        self.holder = holder  # the property below: also makes the C request edge
        self.live = None  # the LivePipeline feeding ``holder``, when create_app made it
        self._find_route = None  # the app's router, once guard_control_plane binds it

    @property
    def holder(self) -> PipelineHolder:
        """The holder of the pipeline every request runs (its ``current``, read once per request)."""
        return self._holder

    @holder.setter
    def holder(self, holder: PipelineHolder) -> None:
        self._holder = holder
        # PERF: process_request's common case in C, reading this holder; not where log lines
        # carry the request's context
        native = accel.ACCEL
        self._edge = None if native is None or self._log_context else native.RequestEdge(
            holder, STATE_PROTOTYPE, ENVIRON_KEYS, CONTINUE, falcon.Request, ADMIN_PREFIX, METRICS_PATH)

    def guard_control_plane(self, app: falcon.App) -> None:
        """Make the control-plane bypass ask ``app``'s own router, so it covers exactly the
        paths falcon sends to the admin API and ``/metrics`` (``create_app`` calls this once
        they are mounted)."""
        # NOTE: falcon keeps the router in a private attribute; it is what routing uses.
        self._find_route = app._router.find

    def is_control_plane(self, path: str) -> bool:
        """Whether falcon routes ``path`` (``req.path``) to the admin API or ``/metrics``.

        The ``/_admin/`` sink matches the path as it is; the router strips leading slashes
        first (``//_admin/pipeline`` is the pipeline route) and matches whole segments
        (``/_admin//pipeline`` is no route, ``//_admin/x`` no sink: the app's)."""
        if path.startswith(ADMIN_PREFIX):
            return True
        # PERF: only a path the router could strip or a /metrics spelling needs the router
        if path[1:2] != "/" and not path.startswith(METRICS_PATH):
            return False
        if self._find_route is None:  # a bare middleware: no router to ask, the same rule
            routed = "/" + path.lstrip("/")
            return routed.startswith(ADMIN_PREFIX) or routed == METRICS_PATH
        route = self._find_route(path)
        return route is not None and _control_template(route[3])

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        edge = self._edge
        if edge is not None and accel.ACCEL is not None:
            # PERF: the common case in one C call (_accel.RequestEdge): the checks, the state,
            # every plain stage, the header write-back; it hands back what it leaves to Python
            left = edge.enter(req)
            if left is None:
                return
            if left is not False:
                pipeline, state, index, outcome = left
                self._after_stages(req, resp, state, pipeline.resume(state, index, outcome))
                return
        self._process_request(req, resp)

    def _process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The request phase in Python: the reference ``RequestEdge`` is the PERF twin of."""
        # PERF: the measured hot path; one read of the current pipeline, nothing else shared.
        pipeline = self._holder.current
        if not pipeline.stages:
            return
        path = req.path
        # PERF: is_control_plane's first checks inline; only a path it could route there calls it
        if path.startswith(ADMIN_PREFIX) or ((path[1:2] == "/" or path.startswith(METRICS_PATH))
                                             and self.is_control_plane(path)):
            # NOTE: the admin API and metrics are the control plane: no stage sees them, so a
            # broken or hostile stage can never lock operators out of a rollback. They have
            # their own token auth.
            return
        env = req.env
        # NOTE: the headers stay in the environ; the stages get them packed from it, and only
        # the names a stage edits are written back (falcon's header caches reset only then)
        native = accel.ACCEL
        if native is not None:  # PERF: RequestState.__init__'s result made in C (no frame)
            state = native.clone_state(STATE_PROTOTYPE, req.method, path, req.query_string,
                                       req.remote_addr or "", req.scheme, env)
        else:
            state = RequestState(req.method, path, req.query_string, None, req.remote_addr or "", req.scheme, env)
        traceparent = env.get("HTTP_TRACEPARENT")
        if traceparent:
            state.ctx["traceparent"] = traceparent  # W3C trace context, for guests and spans
        req.context.mwhost = state  # NOTE: the attribute named _STATE (a constant: no setattr call)
        if self._log_context:
            REQUEST.set((state.request_id(), pipeline.generation))
        self._after_stages(req, resp, state, pipeline.on_request(state))

    def _after_stages(self, req: falcon.Request, resp: falcon.Response, state: RequestState,
                      action) -> None:
        """What the request phase's outcome does to falcon's request: a respond action
        answers; edits reach the environ, falcon's caches and routing."""
        if action is not None:
            _respond(resp, action.status, action.headers, action.body)
            return
        if state.env_edited:
            _reread_environ(req, req.env)
        if state.edited_names:
            env = req.env
            # PERF: one added pair per edited name (add_header-like stages) written in C
            native = accel.ACCEL
            if native is None or not native.write_edits(env, state, ENVIRON_KEYS):
                write_environ_headers(env, state.edited_headers(), state.edited_names)
            # NOTE: falcon caches the header dicts on first access; drop them after an edit.
            req._cached_headers = None
            req._cached_headers_lower = None
        if state.edited_target:
            if self.is_control_plane(state.path):
                # NOTE: a stage may rewrite paths, never into the control plane: with a
                # header it set, a module could otherwise call the admin API itself.
                logger.error("a stage rewrote %r into the control plane path %r: refused",
                             req.path, state.path)
                status, headers, body = problem(403, "Forbidden", "A middleware stage rewrote the request "
                                                "into the host's control plane; it was not processed.")
                _respond(resp, status, headers, body)
                return
            _retarget(req, state.path, state.query)

    def process_response(self, req: falcon.Request, resp: falcon.Response,
                         resource: object, req_succeeded: bool) -> None:
        state = getattr(req.context, _STATE, None)
        if state is None:
            return
        ran = state.ran
        if ran and not state.response_calls:
            # PERF: no stage has a response phase to call (the common case, _response_phase's
            # first branch written out): only the stages' response_headers to set
            # NOTE: falcon's own header dict, which ``resp.set_header`` writes: a stage's
            # response_headers hold lower-case names and str values (decode_action checks
            # them, http-wasm stages lower-case theirs), which is all set_header would make
            headers = resp._headers
            native = accel.ACCEL
            # PERF: each stage set at most one header, not Set-Cookie (the common case): in C
            if native is None or not native.set_response_headers(headers, ran):
                _set_response_headers(resp, headers, ran)
        elif ran:
            self._response_phase(req, resp, state, not req_succeeded)
        if state.variants is not None:
            # a rollout's 5xx gate counts the final answer of every request it routed
            status = resp.status_code
            for canary, variant in state.variants.values():
                canary.responded(variant, status)
        if state.shadows is not None:
            # NOTE: shadow calls run after the response is sent (mwhost serve's post_request
            # hook releases them; other servers get them queued now), off the request thread
            SHADOWS.hand_off(req.env, state.shadows, self._record_values())

    def _record_values(self) -> bool:
        """``[rollout] record_values``: whether shadow differences keep header values."""
        settings = getattr(self.live, "rollout_settings", None)
        return bool(getattr(settings, "record_values", False))

    def _response_phase(self, req: falcon.Request, resp: falcon.Response, state: RequestState,
                        is_error: bool = False) -> None:
        """The response phase with at least one stage's mw_on_response to call (process_response
        sets the stages' response_headers itself when none has one)."""
        before = list(resp.headers.items())
        if "content-type" not in resp.headers and _has_content(resp):
            # NOTE: falcon adds its default media type only when it serializes; show it now.
            before.append(("content-type", req.options.default_media_type))
        response = ResponseState(resp.status_code, before,
                                 resp.render_body() if state.wants_response_body else None, is_error)
        response_phase(state, response)
        if response.changed:
            _write_response(resp, before, response)


def _control_template(template: str | None) -> bool:
    return template is not None and (template.startswith(ADMIN_PREFIX) or template == METRICS_PATH)


def _set_response_headers(resp: falcon.Response, headers: dict, ran: list) -> None:
    """The stages' response_headers, last stage first, into falcon's header dict ``headers``
    (``_accel.set_response_headers`` does the common case in C)."""
    for _, response_headers in reversed(ran):
        if response_headers:
            if len(response_headers) == 1 and response_headers[0][0] != "set-cookie":
                name, value = response_headers[0]  # PERF: one header, nothing to group,
                headers[name] = value              # no set_header call per stage
            else:
                _set_headers(resp, response_headers)


def _set_headers(resp: falcon.Response, headers: list) -> None:
    """ABI ``set_headers`` on a falcon response: each name replaced by all its listed values.
    (``process_response`` sets one non-Set-Cookie header itself, the common case.)"""
    for name, values in _grouped(resp, headers).items():
        resp.set_header(name, ", ".join(values))


def _grouped(resp: falcon.Response, headers: list) -> dict[str, list[str]]:
    """The values of each name in order, joined once by the caller: string concatenation
    per value would be quadratic. Set-Cookie is appended at once instead, since falcon
    keeps each Set-Cookie on its own line."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        if name == "set-cookie":
            resp.append_header(name, value)
        else:
            values = grouped.get(name)
            if values is None:
                grouped[name] = [value]
            else:
                values.append(value)
    return grouped


def _has_content(resp: falcon.Response) -> bool:
    return resp.data is not None or resp.text is not None or resp.media is not None


def _respond(resp: falcon.Response, status: int, headers, body: bytes | None) -> None:
    resp.status = status
    for name, values in _grouped(resp, headers or ()).items():
        resp.append_header(name, ", ".join(values))
    if body is not None:
        resp.data = body
    resp.complete = True


def _reread_environ(req: falcon.Request, env: dict) -> None:
    """An http-wasm stage changed the method or the body in the environ (set_method,
    read_body's buffer, write_body): falcon read both at construction."""
    req.method = env["REQUEST_METHOD"]
    req.stream = env["wsgi.input"]
    req._bounded_stream = None


def _retarget(req: falcon.Request, path: str, query: str) -> None:
    """Point routing and the responder at the path and query a stage rewrote."""
    req.path = path
    req.env["PATH_INFO"] = path
    if query != req.query_string:
        req.query_string = query
        req.env["QUERY_STRING"] = query
        # NOTE: falcon parses the query once at construction; parse the new one the same way.
        req._params = parse_query_string(query, keep_blank=req.options.keep_blank_qs_values,
                                         csv=req.options.auto_parse_qs_csv)


def _write_response(resp: falcon.Response, before: list, response: ResponseState) -> None:
    """Apply the response phase's result to the falcon response, touching only what changed."""
    if response.status != resp.status_code:
        resp.status = response.status
    if response.headers is not before:
        names = {name for name, _ in response.headers}
        for name, _ in before:
            if name not in names:
                resp.delete_header(name)
        _set_headers(resp, response.headers)
    if response.body is not None:
        resp.data = response.body
        resp.text = None
        resp.media = None
