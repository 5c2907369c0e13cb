/* mwhost.runtime._accel, part: plain stages' request calls (run_stages).
 * One translation unit: host/runtime/_accel.c includes the parts in order (each uses the
 * ones before it); never compiled on its own. */

/* ---------------------------------------------------------------- plain stages' request calls */

/* run_stages(preps, state, index, CONTINUE) -> (index, outcome)
 *
 * Pipeline.on_request's loop for plain stages (issue 13, round 5): from stage ``index`` on,
 * each stage whose prep is a tuple (Stage.request_prep) is called here as Stage.on_request
 * and Pipeline.on_request would call it, with the same effects: the slot pool's pop and
 * append, ``state.message`` (packed here from the environ's header entries and the
 * overlay, else by ``state.pack``), the instance's ``request_call``, the guest log's calls
 * (only after a call that logged), the decoded-action cache (``stage._request_action`` on
 * a miss), the meter's success append, ``state.apply`` for an edit, ``state.ran``.
 * It stops at the first stage it does not run: outcome None (the Python path runs stage
 * ``index``; ``index`` is len(preps) when all ran), a ``respond`` Action, or the exception
 * stage ``index`` failed with (``stage._request_failed`` already discarded its instance
 * and counted the failure; the pipeline applies the stage's failure policy).
 *
 * PERF: one C frame for the whole request phase instead of four Python frames and ~150
 * bytecodes per stage: in a loaded server every request runs on cold caches, where the
 * code and data a stage touches, not its instructions, are the cost (bench/REPORT.md 2c).
 * A prep is (stage, idle, actions, meter, durations, append, fold_at, has_on_response);
 * ``durations`` is the meter's Tally (counted in C) or its deque (``append`` its append).
 */

enum { STEP_NEXT = 0, STEP_STOP = 1 };
enum { PREP_STAGE, PREP_IDLE, PREP_ACTIONS, PREP_METER, PREP_DURATIONS, PREP_APPEND, PREP_FOLD_AT,
       PREP_HAS_ON_RESPONSE, PREP_SIZE };

static const char *const stage_name_text[] = {
    "message", "_headers", "env_edited", "_entries", "_environ", "_added", "edited_names", "method",
    "path", "query", "remote_addr", "scheme", "ctx", "ran", "response_calls", "instance", "codec",
    "request_call", "log", "clean", "pending", "begin_call", "end_call", "respond", "response_headers",
    "apply", "pack", "_request_failed", "_request_action", "fold", "set_headers", "remove_headers", "env",
};
enum { N_MESSAGE, N_HEADERS, N_ENV_EDITED, N_ENTRIES, N_ENVIRON, N_ADDED, N_EDITED_NAMES, N_METHOD,
       N_PATH, N_QUERY, N_REMOTE_ADDR, N_SCHEME, N_CTX, N_RAN, N_RESPONSE_CALLS, N_INSTANCE, N_CODEC,
       N_REQUEST_CALL, N_LOG, N_CLEAN, N_PENDING, N_BEGIN_CALL, N_END_CALL, N_RESPOND,
       N_RESPONSE_HEADERS, N_APPLY, N_PACK, N_REQUEST_FAILED, N_REQUEST_ACTION, N_FOLD, N_SET_HEADERS,
       N_REMOVE_HEADERS, N_ENV, N_COUNT };
static PyObject *stage_names[N_COUNT];

static int stage_names_ready(void) {
    if (stage_names[N_COUNT - 1] != NULL) return 0;
    for (int i = 0; i < N_COUNT; i++)
        if (stage_names[i] == NULL && (stage_names[i] = PyUnicode_InternFromString(stage_name_text[i])) == NULL)
            return -1;
    return 0;
}

/* PERF: the attributes run_stages reads and writes are __slots__ of RequestState, Action,
 * _Slot, GuestInstance and GuestLog: their member descriptors' offsets, resolved once per
 * type (two types per name: ``path`` is the state's and the action's), are read and written
 * directly, as PyMember_GetOne/SetOne do, instead of a type lookup and a descriptor call per
 * access. Anything else (a property, a subclass's override, a type changed since: its
 * version tag) goes through PyObject_GetAttr/SetAttr. */
typedef struct {
    PyTypeObject *type;
    unsigned int version;
    Py_ssize_t offset;
} SlotOffset;
static SlotOffset slot_offsets[N_COUNT][2];

/* the offset of slot ``n`` in ``o``'s type, or -1 (use the generic path) */
static Py_ssize_t slot_offset(PyObject *o, int n) {
    PyTypeObject *type = Py_TYPE(o);
    SlotOffset *cached = slot_offsets[n];
    for (int i = 0; i < 2; i++)
        if (cached[i].type == type && cached[i].version == type->tp_version_tag
                && PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG))
            return cached[i].offset;
    PyObject *descr = _PyType_Lookup(type, stage_names[n]);  /* borrowed; assigns a version tag */
    Py_ssize_t offset = -1;
    if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type == T_OBJECT_EX && !(member->flags & READONLY)) offset = member->offset;
    }
    if (offset >= 0 && PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG)) {
        cached[1] = cached[0];
        cached[0].type = type;
        cached[0].version = type->tp_version_tag;
        cached[0].offset = offset;
    }
    return offset;
}

/* getattr(o, name n): a new reference, or NULL raised */
static PyObject *slot_get(PyObject *o, int n) {
    Py_ssize_t offset = slot_offset(o, n);
    if (offset >= 0) {
        PyObject *value = *(PyObject **)((char *)o + offset);
        if (value != NULL) return Py_NewRef(value);
    }
    return PyObject_GetAttr(o, stage_names[n]);  /* also raises AttributeError for an unset slot */
}

/* setattr(o, name n, value): 0, or -1 raised */
static int slot_set(PyObject *o, int n, PyObject *value) {
    Py_ssize_t offset = slot_offset(o, n);
    if (offset < 0) return PyObject_SetAttr(o, stage_names[n], value);
    PyObject **address = (PyObject **)((char *)o + offset), *old = *address;
    *address = Py_NewRef(value);
    Py_XDECREF(old);
    return 0;
}

#define ATTR(o, n) slot_get((o), (n))
#define SET_ATTR(o, n, v) slot_set((o), (n), (v))

/* time.perf_counter's clock (CLOCK_MONOTONIC on Linux), in seconds */
static double stage_clock(void) {
    return (double)monotonic_ns() * 1e-9;
}

/* a call's result dropped: 0, or -1 when it raised */
static int call_dropping(PyObject *result) {
    if (result == NULL) return -1;
    Py_DECREF(result);
    return 0;
}

/* RequestState.pack for the common case, in C: the headers still in the environ, no
 * http-wasm edit of it; the entries packed once per request and kept on the state.
 * Anything else (or an input only Python packs) goes through ``state.pack(codec)``. */
static PyObject *state_message(PyObject *state, PyObject *slot) {
    PyObject *headers = ATTR(state, N_HEADERS), *edited = NULL, *entries = NULL, *message = NULL;
    PyObject *args[9] = {NULL};
    if (headers == NULL) return NULL;
    if (headers != Py_None) goto python;
    if ((edited = ATTR(state, N_ENV_EDITED)) == NULL) goto done;
    if (edited != Py_False) goto python;
    if ((entries = ATTR(state, N_ENTRIES)) == NULL) goto done;
    if (entries == Py_None) {
        PyObject *environ = ATTR(state, N_ENVIRON);
        if (environ == NULL) goto done;
        Py_SETREF(entries, header_entries(NULL, &environ, 1));
        if (entries == Py_None) Py_SETREF(entries, Py_NewRef(environ));  /* as ``... or self._environ`` */
        Py_DECREF(environ);
        if (entries == NULL || SET_ATTR(state, N_ENTRIES, entries) < 0) goto done;
    }
    if (!Py_IS_TYPE(entries, &HeaderEntriesType)) goto python;
    static const int fields[] = {N_METHOD, N_PATH, N_QUERY, -1, N_REMOTE_ADDR, N_SCHEME, N_CTX, -1, N_ADDED};
    for (int i = 0; i < 9; i++) {
        if (fields[i] < 0) continue;
        if ((args[i] = ATTR(state, fields[i])) == NULL) goto done;
    }
    args[3] = Py_NewRef(entries);
    /* ``None if added is None else self.edited_names`` */
    if ((args[7] = args[8] == Py_None ? Py_NewRef(Py_None) : ATTR(state, N_EDITED_NAMES)) == NULL) goto done;
    message = pack_request(NULL, args, 9);
    if (message != Py_None) goto done;
    Py_CLEAR(message);
python:
    {
        PyObject *codec = ATTR(slot, N_CODEC);
        if (codec != NULL) message = PyObject_CallMethodOneArg(state, stage_names[N_PACK], codec);
        Py_XDECREF(codec);
    }
done:
    for (int i = 0; i < 9; i++) Py_XDECREF(args[i]);
    Py_XDECREF(entries);
    Py_XDECREF(edited);
    Py_DECREF(headers);
    return message;
}

/* The guest call on an instance taken from the pool: the message, the log's calls, the
 * roundtrip, the decoded action. A new reference, or NULL raised (the caller's failure). */
static PyObject *stage_call(PyObject *state, PyObject *stage, PyObject *actions, PyObject *slot,
                            PyObject *call, PyObject *log, uint64_t started_ns) {
    PyObject *clean = ATTR(log, N_CLEAN);
    if (clean == NULL) return NULL;
    int dirty = clean != Py_True;
    Py_DECREF(clean);
    if (dirty && call_dropping(PyObject_CallMethodNoArgs(log, stage_names[N_BEGIN_CALL])) < 0) return NULL;
    PyObject *message = ATTR(state, N_MESSAGE);
    if (message == NULL) return NULL;
    if (message == Py_None) {
        Py_SETREF(message, state_message(state, slot));
        if (message == NULL || SET_ATTR(state, N_MESSAGE, message) < 0) {
            Py_XDECREF(message);
            return NULL;
        }
    }
    PyObject *raw;
    if (Py_IS_TYPE(call, &MessageCallType) && PyBytes_CheckExact(message)
            && ((MessageCall *)call)->fail != NULL) {  /* PERF: no argument tuple to build and parse */
        MessageCall *direct = (MessageCall *)call;
        /* NOTE: the stage's start is the call's (a deadline then counts the packing too) */
        raw = message_call(direct, PyBytes_AS_STRING(message), PyBytes_GET_SIZE(message),
                           direct->max_output, direct->deadline_ticks, started_ns);
    } else {
        raw = PyObject_CallOneArg(call, message);
    }
    Py_DECREF(message);
    if (raw == NULL) return NULL;
    if ((clean = ATTR(log, N_CLEAN)) == NULL) goto failed;
    dirty = clean != Py_True;
    Py_DECREF(clean);
    if (dirty) {  /* the guest logged: ``if not log.clean and log.pending: log.end_call()`` */
        PyObject *pending = ATTR(log, N_PENDING);
        int flush = pending == NULL ? -1 : PyObject_IsTrue(pending);
        Py_XDECREF(pending);
        if (flush < 0 || (flush && call_dropping(PyObject_CallMethodNoArgs(log, stage_names[N_END_CALL])) < 0))
            goto failed;
    }
    PyObject *action = PyDict_GetItemWithError(actions, raw);
    if (action != NULL) Py_INCREF(action);
    else if (!PyErr_Occurred()) action = PyObject_CallMethodOneArg(stage, stage_names[N_REQUEST_ACTION], raw);
    Py_DECREF(raw);
    return action;
failed:
    Py_DECREF(raw);
    return NULL;
}

/* a failed call: its exception (with its traceback) as the outcome, after
 * ``stage._request_failed(slot, err, seconds)``; -1 when that raised */
static int stage_failed(PyObject *stage, PyObject *slot, double started, PyObject **outcome) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (type == NULL) {  /* NOTE: every failure path raises first; never hand back NULL */
        PyErr_SetString(PyExc_SystemError, "run_stages: a stage call failed without an exception");
        return -1;
    }
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) PyException_SetTraceback(value, traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    PyObject *seconds = PyFloat_FromDouble(stage_clock() - started);
    PyObject *done = seconds == NULL ? NULL : PyObject_CallMethodObjArgs(
        stage, stage_names[N_REQUEST_FAILED], slot, value, seconds, NULL);
    Py_XDECREF(seconds);
    if (done == NULL) {
        Py_XDECREF(value);
        return -1;
    }
    Py_DECREF(done);
    *outcome = value;
    return STEP_STOP;
}

/* the meter's success: PhaseMeter.record(seconds, True), or its Tally's count */
static int stage_metered(PyObject *const *prep, double started) {
    if (prep[PREP_APPEND] == Py_None) return 0;  /* NULL_METER */
    if (Py_IS_TYPE(prep[PREP_DURATIONS], &TallyType)) {
        tally_add((Tally *)prep[PREP_DURATIONS], stage_clock() - started);
        return 0;
    }
    PyObject *seconds = PyFloat_FromDouble(stage_clock() - started);
    if (seconds == NULL || call_dropping(PyObject_CallOneArg(prep[PREP_APPEND], seconds)) < 0) {
        Py_XDECREF(seconds);
        return -1;
    }
    Py_DECREF(seconds);
    Py_ssize_t waiting = PyObject_Size(prep[PREP_DURATIONS]);
    if (waiting < 0) return -1;
    if (waiting >= PyLong_AsSsize_t(prep[PREP_FOLD_AT]))
        return call_dropping(PyObject_CallMethodNoArgs(prep[PREP_METER], stage_names[N_FOLD]));
    return 0;
}

/* whether ``pair`` is a (name, value) tuple or list of two str; its name in *name */
static int header_pair(PyObject *pair, PyObject **name) {
    PyObject *value;
    if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2) {
        *name = PyTuple_GET_ITEM(pair, 0);
        value = PyTuple_GET_ITEM(pair, 1);
    } else if (PyList_CheckExact(pair) && PyList_GET_SIZE(pair) == 2) {
        *name = PyList_GET_ITEM(pair, 0);
        value = PyList_GET_ITEM(pair, 1);
    } else {
        return 0;
    }
    return PyUnicode_CheckExact(*name) && PyUnicode_CheckExact(value);
}

/* RequestState.apply for its common case, in C: a ``continue`` that only sets headers, on
 * a state whose headers are still in the environ (the overlay). 1 applied, 0 not this
 * case (the caller calls ``state.apply``), -1 raised. The overlay's new ``_added``: the
 * earlier added pairs whose names ``set_headers`` does not set, then ``set_headers``'s
 * pairs (a new list: decoded actions are shared, never mutated). */
static int apply_set_headers(PyObject *state, PyObject *action) {
    static const int rest[] = {N_REMOVE_HEADERS, N_PATH, N_QUERY, N_CTX};
    for (int i = 0; i < 4; i++) {  /* ``remove_headers``/``ctx`` empty, ``path``/``query`` None */
        PyObject *value = ATTR(action, rest[i]);
        if (value == NULL) return -1;
        int other = value != Py_None && (i == 1 || i == 2 || PyObject_IsTrue(value) != 0);
        Py_DECREF(value);
        if (other) return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *set_ = ATTR(action, N_SET_HEADERS), *headers = NULL, *added = NULL, *edited = NULL, *name;
    PyObject *result = NULL;
    int rc = -1;
    if (set_ == NULL) return -1;
    Py_ssize_t count = PyList_CheckExact(set_) ? PyList_GET_SIZE(set_) : 0;
    rc = 0;
    if (count == 0) goto done;  /* nothing set (or not a list): Python's to judge */
    for (Py_ssize_t i = 0; i < count; i++)
        if (!header_pair(PyList_GET_ITEM(set_, i), &name)) goto done;
    rc = -1;
    if ((headers = ATTR(state, N_HEADERS)) == NULL) goto done;
    rc = 0;
    if (headers != Py_None) goto done;  /* a header list: edit_headers, in Python */
    rc = -1;
    if ((added = ATTR(state, N_ADDED)) == NULL || (edited = ATTR(state, N_EDITED_NAMES)) == NULL) goto done;
    rc = 0;
    if ((added != Py_None && !PyList_CheckExact(added)) || !PySet_CheckExact(edited)) goto done;
    rc = -1;
    if ((result = PyList_New(0)) == NULL) goto done;
    Py_ssize_t kept = added == Py_None ? 0 : PyList_GET_SIZE(added);
    for (Py_ssize_t i = 0; i < kept; i++) {
        PyObject *pair = PyList_GET_ITEM(added, i), *old;
        if (!header_pair(pair, &old)) {
            rc = 0;  /* a pair only Python judges */
            goto done;
        }
        int dropped = 0;
        for (Py_ssize_t j = 0; j < count && !dropped; j++) {
            header_pair(PyList_GET_ITEM(set_, j), &name);
            dropped = PyUnicode_Compare(old, name) == 0;
        }
        if (!dropped && PyList_Append(result, pair) < 0) goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = PyList_GET_ITEM(set_, i);
        header_pair(pair, &name);
        if (PyList_Append(result, pair) < 0 || PySet_Add(edited, name) < 0) goto done;
    }
    if (SET_ATTR(state, N_ADDED, result) < 0
            || SET_ATTR(state, N_MESSAGE, Py_None) < 0)  /* packed again next */
        goto done;
    rc = 1;
done:
    Py_XDECREF(result);
    Py_XDECREF(edited);
    Py_XDECREF(added);
    Py_XDECREF(headers);
    Py_DECREF(set_);
    return rc;
}

/* after a ``continue``: ``state.apply``, ``state.ran``, ``state.response_calls`` */
static int stage_continued(PyObject *const *prep, PyObject *state, PyObject *action, PyObject *cont) {
    if (action != cont) {
        int applied = apply_set_headers(state, action);
        if (applied < 0 || (applied == 0
                            && call_dropping(PyObject_CallMethodOneArg(state, stage_names[N_APPLY], action)) < 0))
            return -1;
    }
    PyObject *response_headers = ATTR(action, N_RESPONSE_HEADERS), *ran = ATTR(state, N_RAN), *entry = NULL;
    int rc = -1;
    if (response_headers != NULL && ran != NULL && PyList_CheckExact(ran)
            && (entry = PyTuple_Pack(2, prep[PREP_STAGE], response_headers)) != NULL)
        rc = PyList_Append(ran, entry);
    else if (ran != NULL && !PyList_CheckExact(ran))
        PyErr_SetString(PyExc_TypeError, "state.ran must be a list");
    Py_XDECREF(entry);
    Py_XDECREF(ran);
    Py_XDECREF(response_headers);
    if (rc == 0 && prep[PREP_HAS_ON_RESPONSE] == Py_True)
        rc = SET_ATTR(state, N_RESPONSE_CALLS, Py_True);
    return rc;
}

/* one plain stage: STEP_NEXT, STEP_STOP (``*outcome`` set or not), or -1 raised */
static int stage_step(PyObject *prep_tuple, PyObject *state, PyObject *cont, PyObject **outcome) {
    if (!PyTuple_CheckExact(prep_tuple) || PyTuple_GET_SIZE(prep_tuple) != PREP_SIZE) return STEP_STOP;
    PyObject *const *prep = &PyTuple_GET_ITEM(prep_tuple, 0);
    PyObject *stage = prep[PREP_STAGE], *idle = prep[PREP_IDLE];
    if (!PyList_CheckExact(idle) || !PyDict_CheckExact(prep[PREP_ACTIONS])) return STEP_STOP;
    uint64_t started_ns = monotonic_ns();
    double started = (double)started_ns * 1e-9;  /* stage_clock's */
    Py_ssize_t idle_count = PyList_GET_SIZE(idle);
    if (idle_count == 0) return STEP_STOP;  /* a new instance: Stage._replacement, in Python */
    /* NOTE: the GIL is held from here to the pop: as list.pop, no other thread sees the slot.
     * PERF: the list's reference taken over and its size cut, with no resize: list.pop of
     * the only slot frees the item array, which the append after the call makes again */
    PyObject *slot = PyList_GET_ITEM(idle, idle_count - 1);
    PyList_SET_ITEM(idle, idle_count - 1, NULL);
    Py_SET_SIZE(idle, idle_count - 1);
    PyObject *instance = ATTR(slot, N_INSTANCE), *call = NULL, *log = NULL, *action = NULL;
    if (instance != NULL && (call = ATTR(instance, N_REQUEST_CALL)) != NULL && call == Py_None) {
        /* an instance with per-call fuel (or a Python clock): GuestInstance.on_request */
        int rc = PyList_Append(idle, slot);
        Py_DECREF(call);
        Py_DECREF(instance);
        Py_DECREF(slot);
        return rc < 0 ? -1 : STEP_STOP;
    }
    if (call != NULL && (log = ATTR(instance, N_LOG)) != NULL)
        action = stage_call(state, stage, prep[PREP_ACTIONS], slot, call, log, started_ns);
    Py_XDECREF(log);
    Py_XDECREF(call);
    Py_XDECREF(instance);
    if (action == NULL) {
        int rc = stage_failed(stage, slot, started, outcome);
        Py_DECREF(slot);
        return rc;
    }
    int rc = PyList_Append(idle, slot);
    Py_DECREF(slot);
    if (rc < 0 || stage_metered(prep, started) < 0) {
        Py_DECREF(action);
        return -1;
    }
    PyObject *respond = ATTR(action, N_RESPOND);
    int responds = respond == NULL ? -1 : PyObject_IsTrue(respond);
    Py_XDECREF(respond);
    if (responds != 0) {
        if (responds > 0) *outcome = action;
        else Py_DECREF(action);
        return responds > 0 ? STEP_STOP : -1;
    }
    rc = stage_continued(prep, state, action, cont);
    Py_DECREF(action);
    return rc < 0 ? -1 : STEP_NEXT;
}

static PyObject *run_stages(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4 || !PyTuple_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "run_stages(preps: tuple, state, index, CONTINUE)");
        return NULL;
    }
    if (stage_names_ready() < 0) return NULL;
    PyObject *preps = args[0], *state = args[1], *cont = args[3], *outcome = NULL;
    Py_ssize_t index = PyLong_AsSsize_t(args[2]), count = PyTuple_GET_SIZE(preps);
    if (index < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "run_stages: a negative index");
        return NULL;
    }
    for (; index < count; index++) {
        int rc = stage_step(PyTuple_GET_ITEM(preps, index), state, cont, &outcome);
        if (rc < 0) return NULL;
        if (rc == STEP_STOP) break;
    }
    return Py_BuildValue("(nN)", index, outcome != NULL ? outcome : Py_NewRef(Py_None));
}
