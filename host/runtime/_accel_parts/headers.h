/* mwhost.runtime._accel, part: request headers: from the environ, packed once, the Request packed (pack_request, header_entries, environ_headers).
 * One translation unit: host/runtime/_accel.c includes the parts in order (each uses the
 * ones before it); never compiled on its own. */

/* ---------------------------------------------------------------- headers */

/* The header name of an environ key, as wsgi_headers._HeaderNames makes it: 1 and the
 * name in ``out`` for a header, 0 for a key that is not one, -2 for a key only the Python
 * path can judge (not an exact str, or a non-ASCII HTTP_ key). */
static int header_name(PyObject *key, PyObject *value, char *out, Py_ssize_t *out_len, Py_ssize_t cap) {
    if (!PyUnicode_CheckExact(key)) return -2;
    if (!PyUnicode_IS_ASCII(key)) {
        /* only an HTTP_ prefix makes a header; lower() of non-ASCII is Python's to do */
        PyObject *prefix = PyUnicode_Substring(key, 0, 5);
        if (prefix == NULL) return -1;
        int http = PyUnicode_CompareWithASCIIString(prefix, "HTTP_") == 0;
        Py_DECREF(prefix);
        return http ? -2 : 0;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(key);
    const char *s = (const char *)PyUnicode_DATA(key);
    if (n > 5 && memcmp(s, "HTTP_", 5) == 0) {
        if (n - 5 > cap) return -2;
        for (Py_ssize_t i = 5; i < n; i++) {
            char c = s[i];
            out[i - 5] = c == '_' ? '-' : (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        *out_len = n - 5;
        return 1;  /* HTTP_ headers count even when empty */
    }
    const char *name = NULL;
    if (n == 12 && memcmp(s, "CONTENT_TYPE", 12) == 0) name = "content-type";
    else if (n == 14 && memcmp(s, "CONTENT_LENGTH", 14) == 0) name = "content-length";
    if (name == NULL) return 0;
    /* servers set CONTENT_TYPE/LENGTH to "" when absent, which is not a header */
    int truthy = PyObject_IsTrue(value);
    if (truthy < 0) return -1;
    if (!truthy) return 0;
    *out_len = (Py_ssize_t)strlen(name);
    memcpy(out, name, *out_len);
    return 1;
}

/* The names a stage removed (or replaced), as UTF-8 spans: a few, compared with memcmp
 * (PERF: no str object per header and pack) */
#define MAX_REMOVED 64
typedef struct {
    Py_ssize_t count;
    const char *name[MAX_REMOVED];
    Py_ssize_t len[MAX_REMOVED];
} Removed;

/* 0, or -2 when the set is not a few str (the Python path packs then) */
static int removed_names(PyObject *set, Removed *removed) {
    removed->count = 0;
    if (set == NULL) return 0;
    if (PySet_GET_SIZE(set) > MAX_REMOVED) return -2;
    Py_ssize_t pos = 0;
    Py_hash_t hash;
    PyObject *name;
    while (_PySet_NextEntry(set, &pos, &name, &hash)) {
        if (!PyUnicode_CheckExact(name)) return -2;
        Py_ssize_t len;
        const char *utf8 = PyUnicode_AsUTF8AndSize(name, &len);  /* lives as long as the str */
        if (utf8 == NULL) {
            PyErr_Clear();
            return -2;
        }
        removed->name[removed->count] = utf8;
        removed->len[removed->count++] = len;
    }
    return 0;
}

static int is_removed(const Removed *removed, const char *name, Py_ssize_t len) {
    for (Py_ssize_t i = 0; i < removed->count; i++)
        if (removed->len[i] == len && memcmp(removed->name[i], name, len) == 0) return 1;
    return 0;
}

/* one environ entry's verdict: 1 a header to send (its name in ``name``), 0 not, <0 error */
static int environ_header(PyObject *key, PyObject *value, const Removed *removed, char *name,
                          Py_ssize_t *name_len, Py_ssize_t cap) {
    int rc = header_name(key, value, name, name_len, cap);
    if (rc <= 0) return rc;
    return !is_removed(removed, name, *name_len);
}

static int put_pair(Buf *b, PyObject *pair) {
    if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2) {
        PUT(put_byte(b, 0x92));
        PUT(put_str(b, PyTuple_GET_ITEM(pair, 0)));
        return put_str(b, PyTuple_GET_ITEM(pair, 1));
    }
    if (PyList_CheckExact(pair) && PyList_GET_SIZE(pair) == 2) {
        PUT(put_byte(b, 0x92));
        PUT(put_str(b, PyList_GET_ITEM(pair, 0)));
        return put_str(b, PyList_GET_ITEM(pair, 1));
    }
    return -2;
}

/* The environ's headers minus the names in ``removed``, then the pairs of ``added`` (both
 * may be NULL): RequestState's edits kept as an overlay over the environ. */
static int put_environ_headers(Buf *b, PyObject *environ, PyObject *removed_set, PyObject *added) {
    Removed removed;
    PUT(removed_names(removed_set, &removed));
    char name[256];
    Py_ssize_t name_len, pos = 0, count = 0;
    PyObject *key, *value;
    /* pass 1: count (the array header comes first) */
    while (PyDict_Next(environ, &pos, &key, &value)) {
        int rc = environ_header(key, value, &removed, name, &name_len, sizeof name);
        if (rc < 0) return rc;
        count += rc;
    }
    Py_ssize_t extra = added == NULL ? 0 : PyList_GET_SIZE(added);
    PUT(put_container(b, count + extra, 0x90, 0xdc, 0xdd));
    pos = 0;
    while (PyDict_Next(environ, &pos, &key, &value)) {
        int rc = environ_header(key, value, &removed, name, &name_len, sizeof name);
        if (rc < 0) return rc;
        if (rc == 0) continue;
        PUT(put_byte(b, 0x92));
        PUT(put_str_bytes(b, name, name_len));
        PUT(put_str(b, value));
    }
    for (Py_ssize_t i = 0; i < extra; i++) PUT(put_pair(b, PyList_GET_ITEM(added, i)));
    return 0;
}

/* ---------------------------------------------------------------- packed environ headers */

/* One request's environ headers, packed: entry i is the bytes [span[3i], span[3i + 3]) of
 * ``data`` (a fixarray of two, the name, the value), its name's UTF-8 at data + span[3i + 1],
 * span[3i + 2] bytes long; span[3 * count] is the end. */
typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t len, count;
    Py_ssize_t *span;
} HeaderEntries;

#define ENTRY_START(e, i) ((e)->span[3 * (i)])
#define ENTRY_NAME(e, i) ((e)->data + (e)->span[3 * (i) + 1])
#define ENTRY_NAME_LEN(e, i) ((e)->span[3 * (i) + 2])

static void HeaderEntries_dealloc(HeaderEntries *self) {
    PyMem_Free(self->data);
    PyMem_Free(self->span);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject HeaderEntriesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mwhost.runtime._accel.HeaderEntries",
    .tp_basicsize = sizeof(HeaderEntries),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One request's environ headers packed once (see header_entries).",
    .tp_dealloc = (destructor)HeaderEntries_dealloc,
};

/* the entries of ``environ`` into ``b`` and their spans (*span, owned by the caller either
 * way); 0, -1 (raised) or -2 (Python decides) */
static int pack_entries(Buf *b, PyObject *environ, Py_ssize_t **span, Py_ssize_t *count) {
    Py_ssize_t pos = 0, n = 0, cap = 32;
    PyObject *key, *value;
    char name[256];
    Py_ssize_t name_len;
    Py_ssize_t *spans = PyMem_Malloc(sizeof(Py_ssize_t) * (3 * cap + 1));
    if (spans == NULL) { PyErr_NoMemory(); return -1; }
    *span = spans;
    while (PyDict_Next(environ, &pos, &key, &value)) {
        int rc = header_name(key, value, name, &name_len, sizeof name);
        if (rc <= 0) {
            if (rc < 0) return rc;
            continue;
        }
        if (n == cap) {
            cap *= 2;
            spans = PyMem_Realloc(spans, sizeof(Py_ssize_t) * (3 * cap + 1));
            if (spans == NULL) { PyErr_NoMemory(); return -1; }
            *span = spans;
        }
        spans[3 * n] = b->len;
        PUT(put_byte(b, 0x92));
        PUT(put_str_bytes(b, name, name_len));
        spans[3 * n + 1] = b->len - name_len;  /* the name's bytes end the str just put */
        spans[3 * n + 2] = name_len;
        PUT(put_str(b, value));
        n++;
    }
    spans[3 * n] = b->len;
    *count = n;
    return 0;
}

static PyObject *header_entries(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "header_entries takes 1 argument");
        return NULL;
    }
    if (!PyDict_CheckExact(args[0])) return Py_NewRef(Py_None);  /* as pack_request: Python's to pack */
    Buf b;
    b.data = b.small;
    b.len = 0;
    b.cap = sizeof b.small;
    Py_ssize_t *span = NULL, count = 0;
    int rc = pack_entries(&b, args[0], &span, &count);
    PyObject *result = NULL;
    if (rc == 0) {
        HeaderEntries *entries = PyObject_New(HeaderEntries, &HeaderEntriesType);
        char *data = entries == NULL ? NULL : PyMem_Malloc(b.len ? b.len : 1);
        if (entries != NULL && data == NULL) {
            PyErr_NoMemory();
            entries->data = NULL;
            entries->span = NULL;
            Py_DECREF(entries);
        } else if (entries != NULL) {
            memcpy(data, b.data, b.len);
            entries->data = data;
            entries->len = b.len;
            entries->count = count;
            entries->span = span;
            span = NULL;  /* owned by the entries now */
            result = (PyObject *)entries;
        }
    } else if (rc == -2 && !PyErr_Occurred()) {
        result = Py_NewRef(Py_None);
    }
    PyMem_Free(span);
    buf_free(&b);
    return result;
}

/* The packed entries minus the names in ``removed``, then the pairs of ``added``: the same
 * bytes put_environ_headers makes from the environ the entries were packed from. */
static int put_entries(Buf *b, HeaderEntries *e, PyObject *removed_set, PyObject *added) {
    Removed removed;
    PUT(removed_names(removed_set, &removed));
    Py_ssize_t extra = added == NULL ? 0 : PyList_GET_SIZE(added);
    Py_ssize_t kept = e->count;
    if (removed.count)
        for (Py_ssize_t i = 0; i < e->count; i++)
            kept -= is_removed(&removed, ENTRY_NAME(e, i), ENTRY_NAME_LEN(e, i));
    PUT(put_container(b, kept + extra, 0x90, 0xdc, 0xdd));
    /* PERF: runs of kept entries copied at once (all of them when nothing was removed) */
    Py_ssize_t run = 0;
    for (Py_ssize_t i = 0; removed.count && i < e->count; i++) {
        if (!is_removed(&removed, ENTRY_NAME(e, i), ENTRY_NAME_LEN(e, i))) continue;
        Py_ssize_t size = ENTRY_START(e, i) - ENTRY_START(e, run);
        RESERVE(b, size);
        memcpy(b->data + b->len, e->data + ENTRY_START(e, run), size);
        b->len += size;
        run = i + 1;
    }
    Py_ssize_t size = ENTRY_START(e, e->count) - ENTRY_START(e, run);
    RESERVE(b, size);
    memcpy(b->data + b->len, e->data + ENTRY_START(e, run), size);
    b->len += size;
    for (Py_ssize_t i = 0; i < extra; i++) PUT(put_pair(b, PyList_GET_ITEM(added, i)));
    return 0;
}

static int put_header_list(Buf *b, PyObject *headers) {
    Py_ssize_t n = PyList_GET_SIZE(headers);
    PUT(put_container(b, n, 0x90, 0xdc, 0xdd));
    for (Py_ssize_t i = 0; i < n; i++) PUT(put_pair(b, PyList_GET_ITEM(headers, i)));
    return 0;
}

static int put_str_map(Buf *b, PyObject *map) {
    if (!PyDict_CheckExact(map)) return -2;
    PUT(put_container(b, PyDict_GET_SIZE(map), 0x80, 0xde, 0xdf));
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(map, &pos, &key, &value)) {
        PUT(put_str(b, key));
        PUT(put_str(b, value));
    }
    return 0;
}

static int put_key(Buf *b, const char *key) {
    return put_str_bytes(b, key, (Py_ssize_t)strlen(key));
}

static int put_request(Buf *b, PyObject *const *args, PyObject *removed, PyObject *added) {
    PyObject *headers = args[3];
    PUT(put_byte(b, 0x88));  /* a map of the 8 fields, in Codec.encode_request's order */
    PUT(put_key(b, "v"));
    PUT(put_byte(b, 0x01));
    PUT(put_key(b, "method"));
    PUT(put_str(b, args[0]));
    PUT(put_key(b, "path"));
    PUT(put_str(b, args[1]));
    PUT(put_key(b, "query"));
    PUT(put_str(b, args[2]));
    PUT(put_key(b, "headers"));
    if (Py_IS_TYPE(headers, &HeaderEntriesType)) PUT(put_entries(b, (HeaderEntries *)headers, removed, added));
    else if (PyDict_CheckExact(headers)) PUT(put_environ_headers(b, headers, removed, added));
    else if (PyList_CheckExact(headers) && removed == NULL && added == NULL) PUT(put_header_list(b, headers));
    else return -2;
    PUT(put_key(b, "remote_addr"));
    PUT(put_str(b, args[4]));
    PUT(put_key(b, "scheme"));
    PUT(put_str(b, args[5]));
    PUT(put_key(b, "ctx"));
    PUT(put_str_map(b, args[6]));
    return 0;
}

static PyObject *pack_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 7 && nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "pack_request takes 7 or 9 arguments");
        return NULL;
    }
    /* the overlay: names removed from the environ's headers (a set) and pairs added (a list) */
    PyObject *removed = nargs == 9 && args[7] != Py_None ? args[7] : NULL;
    PyObject *added = nargs == 9 && args[8] != Py_None ? args[8] : NULL;
    if ((removed != NULL && !PyAnySet_CheckExact(removed)) || (added != NULL && !PyList_CheckExact(added)))
        return Py_NewRef(Py_None);
    if (removed != NULL && PySet_GET_SIZE(removed) == 0) removed = NULL;
    Buf b;
    b.data = b.small;
    b.len = 0;
    b.cap = sizeof b.small;
    int rc = put_request(&b, args, removed, added);
    PyObject *result;
    if (rc == 0) result = PyBytes_FromStringAndSize(b.data, b.len);
    else if (rc == -2 && !PyErr_Occurred()) result = Py_NewRef(Py_None);
    else result = NULL;
    buf_free(&b);
    return result;
}

/* ---------------------------------------------------------------- environ -> list */

static PyObject *environ_headers(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyDict_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "environ_headers(environ: dict, names)");
        return NULL;
    }
    PyObject *environ = args[0], *names = args[1], *key, *value;
    PyObject *headers = PyList_New(0);
    if (headers == NULL) return NULL;
    Py_ssize_t pos = 0;
    /* NOTE: names.__missing__ (new keys only) runs Python code that touches ``names``, never
     * the environ; key and value are held across it all the same */
    while (PyDict_Next(environ, &pos, &key, &value)) {
        Py_INCREF(key);
        Py_INCREF(value);
        PyObject *name = PyObject_GetItem(names, key);  /* the Python path's names[key] */
        int keep = name == NULL ? -1 : PyObject_IsTrue(name);
        if (keep > 0) {
            keep = PyObject_IsTrue(value);
            if (keep == 0) {
                /* ``value or key[0] == "H"``: an empty HTTP_ header still counts */
                keep = PyUnicode_Check(key) && PyUnicode_GET_LENGTH(key) > 0
                       && PyUnicode_READ_CHAR(key, 0) == 'H';
            }
        }
        if (keep > 0) {
            PyObject *pair = PyTuple_Pack(2, name, value);
            if (pair == NULL || PyList_Append(headers, pair) < 0) keep = -1;
            Py_XDECREF(pair);
        }
        Py_XDECREF(name);
        Py_DECREF(key);
        Py_DECREF(value);
        if (keep < 0) {
            Py_DECREF(headers);
            return NULL;
        }
    }
    return headers;
}
