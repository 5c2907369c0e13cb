/* mwhost.runtime._accel, part: the request edge (RequestEdge: process_request's common case in one call).
 * One translation unit: host/runtime/_accel.c includes the parts in order (each uses the
 * ones before it); never compiled on its own. */

/* ---------------------------------------------------------------- the request edge */

/* RequestEdge(holder, prototype, keys, cont, request_type, admin_prefix, metrics_path).enter(req)
 *     -> None | False | tuple
 *
 * WasmMiddleware.process_request's common case in one C call (issue 13, round 7): every
 * stage of ``holder.current`` plain (its prep a tuple: run_stages calls it), a path that is
 * the control plane's only when it starts with /_admin/ (anything the router must judge is
 * Python's). It answers
 *   None: done: no stage, an /_admin/ path, or every stage ran and its header edits were
 *         written back to the environ (write_edits' case), falcon's header caches reset;
 *   False: nothing done; the Python path does the whole request;
 *   (pipeline, state, index, outcome): the state made and on ``req.context``, the stages
 *         run up to ``index`` as run_stages runs them; Python finishes from there
 *         (Pipeline.resume, then WasmMiddleware._after_stages), which is also how a state
 *         with an edit other than write_edits' case comes back (index = len(stages)).
 * ``admin_prefix`` and ``metrics_path`` are the web layer's own (ADMIN_PREFIX, METRICS_PATH).
 * A ``req`` of ``request_type`` exactly (falcon.Request) has its remote_addr and scheme
 * read from the environ as falcon's properties read them; any other class's through its
 * attributes. PERF twin of WasmMiddleware._process_request, the reference: the tests in
 * tests/web run every case through both, and tests/runtime/test_accel_edges.py each answer.
 * PERF: in a loaded server the Python prefix and suffix of the request phase (two frames,
 * falcon's two property frames, ~60 bytecodes, three C calls' arguments) cost ~4 us on
 * cold caches; this is one call (bench/REPORT.md section 1g). */
typedef struct {
    PyObject_HEAD
    PyObject *holder, *prototype, *keys, *cont, *request_type, *admin_prefix, *metrics_path;
} RequestEdge;

static const char *const edge_name_text[] = {
    "current", "stages", "_preps", "path", "method", "query_string", "env", "remote_addr", "scheme",
    "context", "mwhost", "edited_target", "_cached_headers", "_cached_headers_lower", "REMOTE_ADDR",
    "wsgi.url_scheme", "HTTP_TRACEPARENT", "traceparent", "127.0.0.1", "",
};
enum { E_CURRENT, E_STAGES, E_PREPS, E_PATH, E_METHOD, E_QUERY_STRING, E_ENV, E_REMOTE_ADDR, E_SCHEME,
       E_CONTEXT, E_MWHOST, E_EDITED_TARGET, E_CACHED_HEADERS, E_CACHED_HEADERS_LOWER, E_REMOTE_ADDR_KEY,
       E_SCHEME_KEY, E_TRACEPARENT_KEY, E_TRACEPARENT, E_LOCALHOST,
       E_EMPTY, E_COUNT };
static PyObject *edge_names[E_COUNT];

static int edge_names_ready(void) {
    if (stage_names_ready() < 0) return -1;
    if (edge_names[E_COUNT - 1] != NULL) return 0;
    for (int i = 0; i < E_COUNT; i++)
        if (edge_names[i] == NULL && (edge_names[i] = PyUnicode_InternFromString(edge_name_text[i])) == NULL)
            return -1;
    return 0;
}

#define EDGE_GET(o, n) PyObject_GetAttr((o), edge_names[n])

static int RequestEdge_init(RequestEdge *self, PyObject *args, PyObject *kwargs) {
    PyObject *holder, *prototype, *keys, *cont, *request_type, *admin_prefix, *metrics_path;
    static char *kwlist[] = {"holder", "prototype", "keys", "cont", "request_type", "admin_prefix",
                             "metrics_path", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOUU:RequestEdge", kwlist, &holder, &prototype, &keys,
                                     &cont, &request_type, &admin_prefix, &metrics_path))
        return -1;
    if (edge_names_ready() < 0) return -1;
    Py_XSETREF(self->holder, Py_NewRef(holder));
    Py_XSETREF(self->prototype, Py_NewRef(prototype));
    Py_XSETREF(self->keys, Py_NewRef(keys));
    Py_XSETREF(self->cont, Py_NewRef(cont));
    Py_XSETREF(self->request_type, Py_NewRef(request_type));
    Py_XSETREF(self->admin_prefix, Py_NewRef(admin_prefix));
    Py_XSETREF(self->metrics_path, Py_NewRef(metrics_path));
    return 0;
}

static void RequestEdge_dealloc(RequestEdge *self) {
    Py_XDECREF(self->holder);
    Py_XDECREF(self->prototype);
    Py_XDECREF(self->keys);
    Py_XDECREF(self->cont);
    Py_XDECREF(self->request_type);
    Py_XDECREF(self->admin_prefix);
    Py_XDECREF(self->metrics_path);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* 1 when every stage of ``pipeline`` is plain (``*preps``: its preps), 0 when none is
 * there (``*preps`` NULL), -1 raised; anything else is -2 (the Python path) */
enum { PIPELINE_PYTHON = -2 };
static int plain_pipeline(PyObject *pipeline, PyObject **preps) {
    PyObject *stages = EDGE_GET(pipeline, E_STAGES);
    *preps = NULL;
    if (stages == NULL) return -1;
    Py_ssize_t count = PyTuple_CheckExact(stages) ? PyTuple_GET_SIZE(stages) : -1;
    Py_DECREF(stages);
    if (count <= 0) return count == 0 ? 0 : PIPELINE_PYTHON;
    PyObject *found = EDGE_GET(pipeline, E_PREPS);
    if (found == NULL) return -1;
    int plain = PyTuple_CheckExact(found) && PyTuple_GET_SIZE(found) == count;
    for (Py_ssize_t i = 0; plain && i < count; i++)
        plain = PyTuple_CheckExact(PyTuple_GET_ITEM(found, i));
    if (!plain) {
        Py_DECREF(found);
        return PIPELINE_PYTHON;
    }
    *preps = found;
    return 1;
}

/* the request's remote_addr (``or ""``, as process_request passes it) and scheme:
 * 0, -1 raised, or PIPELINE_PYTHON (falcon's property would raise: Python's error) */
static int peer(RequestEdge *self, PyObject *req, PyObject *env, PyObject **remote, PyObject **scheme) {
    if ((PyObject *)Py_TYPE(req) == self->request_type) {
        /* falcon.Request's properties: env.get-like REMOTE_ADDR, env["wsgi.url_scheme"] */
        PyObject *found = PyDict_GetItemWithError(env, edge_names[E_REMOTE_ADDR_KEY]);
        if (found == NULL && PyErr_Occurred()) return -1;
        *remote = Py_NewRef(found != NULL ? found : edge_names[E_LOCALHOST]);
        found = PyDict_GetItemWithError(env, edge_names[E_SCHEME_KEY]);
        if (found == NULL) return PyErr_Occurred() ? -1 : PIPELINE_PYTHON;
        *scheme = Py_NewRef(found);
    } else if ((*remote = EDGE_GET(req, E_REMOTE_ADDR)) == NULL
               || (*scheme = EDGE_GET(req, E_SCHEME)) == NULL) {
        return -1;
    }
    int truthy = PyObject_IsTrue(*remote);
    if (truthy < 0) return -1;
    if (!truthy) Py_SETREF(*remote, Py_NewRef(edge_names[E_EMPTY]));
    return 0;
}

/* the request's state, made (clone_state), given the trace context and put on req.context */
static PyObject *edge_state(RequestEdge *self, PyObject *req, PyObject *path, PyObject *env) {
    PyObject *values[6] = {NULL, Py_NewRef(path), NULL, NULL, NULL, Py_NewRef(env)};
    PyObject *state = NULL, *context = NULL;
    int rc = peer(self, req, env, &values[3], &values[4]);
    if (rc == PIPELINE_PYTHON) {
        state = Py_NewRef(Py_False);
        goto done;
    }
    if (rc < 0 || (values[0] = EDGE_GET(req, E_METHOD)) == NULL
            || (values[2] = EDGE_GET(req, E_QUERY_STRING)) == NULL
            || (state = make_state(self->prototype, values)) == NULL)
        goto done;
    PyObject *traceparent = PyDict_GetItemWithError(env, edge_names[E_TRACEPARENT_KEY]);  /* borrowed */
    int traced = traceparent == NULL ? (PyErr_Occurred() ? -1 : 0) : PyObject_IsTrue(traceparent);
    if (traced > 0) {  /* W3C trace context, for guests and spans */
        PyObject *ctx = ATTR(state, N_CTX);
        traced = ctx == NULL ? -1 : PyObject_SetItem(ctx, edge_names[E_TRACEPARENT], traceparent);
        Py_XDECREF(ctx);
    }
    if (traced < 0 || (context = EDGE_GET(req, E_CONTEXT)) == NULL
            || PyObject_SetAttr(context, edge_names[E_MWHOST], state) < 0)
        Py_CLEAR(state);
done:
    Py_XDECREF(context);
    for (int i = 0; i < 6; i++) Py_XDECREF(values[i]);
    return state;
}

/* after every stage ran: 1 done (the edits written, the caches reset), 0 Python finishes, -1 raised */
static int edge_finished(RequestEdge *self, PyObject *req, PyObject *state, PyObject *env) {
    PyObject *flag = ATTR(state, N_ENV_EDITED);
    int python = flag == NULL ? -1 : PyObject_IsTrue(flag);
    Py_XDECREF(flag);
    if (python == 0) {
        flag = EDGE_GET(state, E_EDITED_TARGET);
        python = flag == NULL ? -1 : PyObject_IsTrue(flag);
        Py_XDECREF(flag);
    }
    if (python != 0) return python < 0 ? -1 : 0;
    PyObject *names = ATTR(state, N_EDITED_NAMES);
    if (names == NULL) return -1;
    int edited = PyObject_IsTrue(names);
    Py_DECREF(names);
    if (edited <= 0) return edited < 0 ? -1 : 1;
    int written = edits_written(env, state, self->keys);
    if (written <= 0) return written;
    /* NOTE: falcon caches the header dicts on first access; drop them after an edit */
    if (PyObject_SetAttr(req, edge_names[E_CACHED_HEADERS], Py_None) < 0
            || PyObject_SetAttr(req, edge_names[E_CACHED_HEADERS_LOWER], Py_None) < 0)
        return -1;
    return 1;
}

/* the whole request phase (see the type's comment) */
static PyObject *edge_request(RequestEdge *self, PyObject *req, PyObject *pipeline, PyObject *preps) {
    PyObject *path = EDGE_GET(req, E_PATH), *env = NULL, *state = NULL, *outcome = NULL, *answer = NULL;
    if (path == NULL) return NULL;
    if (!PyUnicode_CheckExact(path)) {
        answer = Py_NewRef(Py_False);
        goto done;
    }
    if (PyUnicode_Tailmatch(path, self->admin_prefix, 0, PY_SSIZE_T_MAX, -1) == 1) {
        /* NOTE: the control plane: no stage sees it (process_request's rule) */
        answer = Py_NewRef(Py_None);
        goto done;
    }
    if ((PyUnicode_GET_LENGTH(path) > 1 && PyUnicode_READ_CHAR(path, 1) == '/')
            || PyUnicode_Tailmatch(path, self->metrics_path, 0, PY_SSIZE_T_MAX, -1) == 1) {
        answer = Py_NewRef(Py_False);  /* the router decides: is_control_plane, in Python */
        goto done;
    }
    if ((env = EDGE_GET(req, E_ENV)) == NULL) goto done;
    if (!PyDict_CheckExact(env)) {
        answer = Py_NewRef(Py_False);
        goto done;
    }
    if ((state = edge_state(self, req, path, env)) == NULL) goto done;
    if (state == Py_False) {
        answer = Py_NewRef(Py_False);
        goto done;
    }
    Py_ssize_t index = 0, count = PyTuple_GET_SIZE(preps);
    for (; index < count; index++) {
        int rc = stage_step(PyTuple_GET_ITEM(preps, index), state, self->cont, &outcome);
        if (rc < 0) goto done;
        if (rc == STEP_STOP) break;
    }
    if (index == count) {
        int rc = edge_finished(self, req, state, env);
        if (rc < 0) goto done;
        if (rc == 1) {
            answer = Py_NewRef(Py_None);
            goto done;
        }
    }
    answer = Py_BuildValue("(OOnO)", pipeline, state, index, outcome != NULL ? outcome : Py_None);
done:
    Py_XDECREF(outcome);
    Py_XDECREF(state);
    Py_XDECREF(env);
    Py_DECREF(path);
    return answer;
}

static PyObject *RequestEdge_enter(RequestEdge *self, PyObject *req) {
    if (self->holder == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "RequestEdge was not initialised");
        return NULL;
    }
    /* NOTE: one read of the current pipeline: a swap never mixes versions within a request */
    PyObject *pipeline = EDGE_GET(self->holder, E_CURRENT), *preps = NULL, *answer = NULL;
    if (pipeline == NULL) return NULL;
    int plain = plain_pipeline(pipeline, &preps);
    if (plain == 1) answer = edge_request(self, req, pipeline, preps);
    else if (plain == 0) answer = Py_NewRef(Py_None);  /* no stage: nothing to do */
    else if (plain == PIPELINE_PYTHON) answer = Py_NewRef(Py_False);
    Py_XDECREF(preps);
    Py_DECREF(pipeline);
    return answer;
}

static PyMethodDef RequestEdge_methods[] = {
    {"enter", (PyCFunction)RequestEdge_enter, METH_O,
     "enter(req) -> None (done) | False (the Python path) | (pipeline, state, index, outcome)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RequestEdgeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mwhost.runtime._accel.RequestEdge",
    .tp_basicsize = sizeof(RequestEdge),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "WasmMiddleware.process_request's common case in one C call",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)RequestEdge_init,
    .tp_dealloc = (destructor)RequestEdge_dealloc,
    .tp_methods = RequestEdge_methods,
};
