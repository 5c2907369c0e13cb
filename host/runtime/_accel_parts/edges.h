/* mwhost.runtime._accel, part: the request's edges (clone_state, write_edits, set_response_headers).
 * One translation unit: host/runtime/_accel.c includes the parts in order (each uses the
 * ones before it); never compiled on its own. */

/* ---------------------------------------------------------------- the request's edges */

/* clone_state(proto, method, path, query, remote_addr, scheme, environ) -> RequestState
 *
 * RequestState.__init__'s result without its frame (the web layer's, from
 * host/pipeline/messages.py STATE_PROTOTYPE): every slot of ``proto`` (a state __init__
 * made, holding only immutable defaults and empty containers) copied, each empty dict, list
 * or set as a new empty one (a non-empty one is refused: it would be every request's), then
 * the request's own fields set. PERF: ~20 attribute stores in one C call; __init__ stays the
 * reference (tests/runtime/test_accel_edges.py compares the two slot by slot). */
static PyObject *fresh_default(PyObject *value) {
    Py_ssize_t size = PyDict_CheckExact(value) ? PyDict_GET_SIZE(value)
                      : PyList_CheckExact(value) ? PyList_GET_SIZE(value)
                      : PyAnySet_CheckExact(value) ? PySet_GET_SIZE(value) : -1;
    if (size > 0) {  /* NOTE: shared by every request: refused, never copied by reference */
        PyErr_SetString(PyExc_RuntimeError, "clone_state: the prototype holds a non-empty container");
        return NULL;
    }
    if (size < 0) return Py_NewRef(value);
    if (PyDict_CheckExact(value)) return PyDict_New();
    if (PyList_CheckExact(value)) return PyList_New(0);
    return PyFrozenSet_CheckExact(value) ? Py_NewRef(value) : PySet_New(NULL);
}

/* the clone of ``proto`` with ``values`` (method, path, query, remote_addr, scheme, environ) */
static PyObject *make_state(PyObject *proto, PyObject *const *values) {
    static const int fields[] = {N_METHOD, N_PATH, N_QUERY, N_REMOTE_ADDR, N_SCHEME, N_ENVIRON, N_ENV};
    PyTypeObject *type = Py_TYPE(proto);
    if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE) || type->tp_members == NULL || type->tp_dictoffset != 0) {
        PyErr_SetString(PyExc_TypeError, "clone_state: the prototype's class must have __slots__ only");
        return NULL;
    }
    PyObject *state = type->tp_alloc(type, 0);
    if (state == NULL) return NULL;
    for (PyMemberDef *member = type->tp_members; member->name != NULL; member++) {
        if (member->type != T_OBJECT_EX || (member->flags & READONLY)) continue;
        PyObject *value = *(PyObject **)((char *)proto + member->offset);
        if (value == NULL) continue;
        PyObject *copy = fresh_default(value);
        if (copy == NULL) {
            Py_DECREF(state);
            return NULL;
        }
        *(PyObject **)((char *)state + member->offset) = copy;
    }
    for (int i = 0; i < 7; i++)
        if (SET_ATTR(state, fields[i], values[i < 5 ? i : 5]) < 0) {
            Py_DECREF(state);
            return NULL;
        }
    return state;
}

static PyObject *clone_state(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "clone_state(proto, method, path, query, remote_addr, scheme, environ)");
        return NULL;
    }
    if (stage_names_ready() < 0) return NULL;
    return make_state(args[0], args + 1);
}

/* write_edits(environ, state, keys) -> bool
 *
 * The web layer's write-back of a request's header edits (wsgi_headers.write_environ_headers
 * of ``state.edited_headers()`` and ``state.edited_names``) for its common case, in C: the
 * headers still in the environ, and the overlay's added pairs holding exactly one pair for
 * each edited name (several add_header-like stages), so each value is written as it is
 * under ``keys[name]`` (the name -> environ key mapping, whose __missing__ makes new keys).
 * False, having written nothing, for anything else. */
#define WRITE_EDITS_MAX 16

static int write_pairs(PyObject *environ, PyObject *headers, PyObject *names, PyObject *keys) {
    Py_ssize_t count = PyList_GET_SIZE(headers);
    if (count == 0 || count > WRITE_EDITS_MAX || count != PySet_GET_SIZE(names)) return 0;
    PyObject *pair_names[WRITE_EDITS_MAX];
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!header_pair(PyList_GET_ITEM(headers, i), &pair_names[i])) return 0;
        int known = PySet_Contains(names, pair_names[i]);
        if (known <= 0) return known;
        for (Py_ssize_t j = 0; j < i; j++) {  /* a repeated name: its values are joined, in Python */
            int same = PyUnicode_Compare(pair_names[i], pair_names[j]);
            if (same == -1 && PyErr_Occurred()) return -1;
            if (same == 0) return 0;
        }
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = PyList_GET_ITEM(headers, i);
        PyObject *value = PyTuple_CheckExact(pair) ? PyTuple_GET_ITEM(pair, 1) : PyList_GET_ITEM(pair, 1);
        PyObject *key = PyObject_GetItem(keys, pair_names[i]);
        if (key == NULL) return -1;
        int rc = PyDict_SetItem(environ, key, value);
        Py_DECREF(key);
        if (rc < 0) return -1;
    }
    return 1;
}

/* write_edits' answer: 1 written, 0 not its case (nothing written), -1 raised */
static int edits_written(PyObject *environ, PyObject *state, PyObject *keys) {
    if (!PyDict_CheckExact(environ)) return 0;
    PyObject *headers = ATTR(state, N_HEADERS), *added = NULL, *names = NULL;
    int rc = -1;
    if (headers == NULL) return -1;
    rc = 0;
    if (headers != Py_None) goto done;  /* a header list: the whole list is written, in Python */
    rc = -1;
    if ((added = ATTR(state, N_ADDED)) == NULL || (names = ATTR(state, N_EDITED_NAMES)) == NULL) goto done;
    rc = 0;
    if (PyList_CheckExact(added) && PyAnySet_CheckExact(names)) rc = write_pairs(environ, added, names, keys);
done:
    Py_XDECREF(names);
    Py_XDECREF(added);
    Py_DECREF(headers);
    return rc;
}

static PyObject *write_edits(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "write_edits(environ, state, keys)");
        return NULL;
    }
    if (stage_names_ready() < 0) return NULL;
    int rc = edits_written(args[0], args[1], args[2]);
    if (rc < 0) return NULL;
    return Py_NewRef(rc ? Py_True : Py_False);
}

/* set_response_headers(headers, ran) -> bool
 *
 * WasmMiddleware.process_response's common case in C: no stage has a response phase, and
 * each stage in ``ran`` (stage, response_headers) set at most one header, not Set-Cookie:
 * in reverse order, ``headers[name] = value`` (falcon's own header dict, as set_header
 * writes it). False, having set nothing, when any stage's headers need the Python path. */
static PyObject *set_response_headers(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "set_response_headers(headers, ran)");
        return NULL;
    }
    PyObject *headers = args[0], *ran = args[1], *name;
    if (!PyDict_CheckExact(headers) || !PyList_CheckExact(ran)) Py_RETURN_FALSE;
    Py_ssize_t count = PyList_GET_SIZE(ran);
    for (Py_ssize_t pass = 0; pass < 2; pass++) {  /* check all, then set all */
        for (Py_ssize_t i = count - 1; i >= 0; i--) {
            PyObject *entry = PyList_GET_ITEM(ran, i);
            if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2) Py_RETURN_FALSE;
            PyObject *response_headers = PyTuple_GET_ITEM(entry, 1);
            if (response_headers == Py_None
                    || (PyTuple_CheckExact(response_headers) && PyTuple_GET_SIZE(response_headers) == 0))
                continue;
            if (!PyList_CheckExact(response_headers)) Py_RETURN_FALSE;
            Py_ssize_t size = PyList_GET_SIZE(response_headers);
            if (size == 0) continue;
            PyObject *pair = PyList_GET_ITEM(response_headers, 0);
            if (size != 1 || !header_pair(pair, &name)
                    || PyUnicode_CompareWithASCIIString(name, "set-cookie") == 0)
                Py_RETURN_FALSE;
            if (pass == 1) {
                PyObject *value = PyTuple_CheckExact(pair) ? PyTuple_GET_ITEM(pair, 1) : PyList_GET_ITEM(pair, 1);
                if (PyDict_SetItem(headers, name, value) < 0) return NULL;
            }
        }
    }
    Py_RETURN_TRUE;
}
