/* mwhost.runtime._accel: the per-request hot path in C (issue 13).
 *
 * The pieces, each a drop-in for a pure-Python function that stays the reference
 * (host/runtime/accel.py selects; MWHOST_NO_ACCEL=1 or a failed build means Python):
 *
 *   pack_request(method, path, query, headers, remote_addr, scheme, ctx[, removed, added])
 *       -> bytes | None
 *       The ABI v1 Request exactly as Codec.encode_request packs it (msgpack-python,
 *       use_bin_type=True), byte for byte. ``headers`` is the WSGI environ (the headers
 *       read as environ_headers reads them, in environ order; minus the names in the set
 *       ``removed``, then the pairs of the list ``added``: the edits of stages kept as an
 *       overlay), header_entries' packed form of it (the same bytes) or a list of (name, value)
 *       pairs. None when an input is not what a WSGI server or the pipeline makes (a value
 *       that is not str, a non-ASCII environ key...): the caller then takes the Python path,
 *       which behaves (and fails) as it always did.
 *
 *   header_entries(environ) -> HeaderEntries | None
 *       The environ's headers packed once per request (each [name, value] pair's msgpack bytes
 *       and where its name lies), for ``pack_request`` to take in place of the environ: a
 *       stage after an edit then copies the unedited pairs' bytes instead of reading the
 *       environ again. None when ``pack_request`` would answer None for the environ. Held by
 *       one RequestState, never across requests.
 *
 *   environ_headers(environ, names) -> list
 *       pipeline.environ.environ_headers's list, made in C: ``names`` is its key -> name
 *       dict (a dict subclass whose __missing__ fills it), looked up the same way.
 *
 *   MessageCall(call, size, data, epoch, context, alloc, handler, memory, trap, fail, keep[, deadline])
 *       .__call__(data, max_output, deadline_ticks) -> bytes, or .__call__(data) with the
 *       members ``max_output`` and ``deadline`` (0 until set); ``releases`` counts the calls
 *       that gave up the GIL, ``deadline`` (the constructor's) is the store's EpochDeadline
 *       fastcall.MessageCall's roundtrip (epoch deadline, mw_alloc, bounds checks, copy in,
 *       the handler, bounds checks, copy out) with the wasmtime C functions' addresses
 *       (taken from the library wasmtime-py loaded). On any failure it calls
 *       ``fail(code, a, b, c)``, which raises the very exception the Python path raises, so
 *       messages and types live in one place (fastcall.py). ``keep`` holds the objects
 *       whose memory the addresses point into.
 *
 *   EpochDeadline(set_callback, error_new, store, message, ticks, tick_ns)
 *       Registers this module's epoch-deadline callback on a wasmtime store (the addresses of
 *       ``wasmtime_store_epoch_deadline_callback`` and ``wasmtime_error_new``, and of the
 *       ``wasmtime_store_t``). Outside a MessageCall (every other path calling into that
 *       store) the epoch deadline is real: the callback fails the call with a
 *       ``wasmtime_error_t`` saying ``message`` (fastcall.py reports it as a GuestTimeout).
 *       Inside one, the call's deadline is wall time (below). A MessageCall given it keeps
 *       the GIL through a short call while ``ticks``, the store's engine's TickSwitch, says
 *       ``keep_gil``; ``tick_ns`` is the ticker's period (ticker.TICK_MS).
 *
 *   TickSwitch().keep_gil
 *       One engine's switch, set by ticker.py while C ticker threads alone tick that engine
 *       (a tick then needs no GIL).
 *
 * NOTE: the GIL and the guest call. A guest that loops until its deadline must not stall the
 * worker's other threads, so the GIL has to go at some point; but every release under
 * gthread hands the GIL to another thread and the call then waits to get it back (+8 us per
 * stage call, bench/REPORT.md). So, where the C ticker ticks (keep_gil), a call keeps the
 * GIL and sets its epoch deadline one tick ahead; at that tick the callback (on the calling
 * thread, inside the guest) releases the GIL and lets the call run on until its deadline;
 * the call takes the GIL back when the guest returns. A short call never releases it. Else
 * (a Python ticker thread, which a call holding the GIL would stop, or no EpochDeadline) the
 * GIL is released around the whole roundtrip, as ctypes and cffi do.
 *
 * NOTE: the deadline of a MessageCall with an EpochDeadline is wall time, not a count of
 * ticks: the call records its start (CLOCK_MONOTONIC) and its end is ``deadline_ticks - 1``
 * ticks of ``tick_ns`` later (Runtime.deadline_ticks: the timeout rounded up to whole ticks,
 * plus the tick under way); its epoch deadline is the next tick, and at each tick the
 * callback compares now with that end: past it, the call fails; before it, the call goes on
 * to the next tick. Epoch checks run only in wasm code, so counting ticks from the first
 * check gives a guest whose first check comes late (a long host call, a descheduled thread)
 * its budget again from there, and late ticks add up; this way a call ends at the first
 * check after its end, within a tick of it when the ticks come on time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- msgpack writer */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
    char small[2048];
} Buf;

static int buf_grow(Buf *b, Py_ssize_t need) {
    Py_ssize_t cap = b->cap * 2;
    while (cap < b->len + need) cap *= 2;
    char *data = (b->data == b->small) ? PyMem_Malloc(cap) : PyMem_Realloc(b->data, cap);
    if (data == NULL) return -1;
    if (b->data == b->small) memcpy(data, b->small, b->len);
    b->data = data;
    b->cap = cap;
    return 0;
}

#define RESERVE(b, n) do { if ((b)->len + (n) > (b)->cap && buf_grow((b), (n)) < 0) return -1; } while (0)

static void buf_free(Buf *b) {
    if (b->data != b->small) PyMem_Free(b->data);
}

static int put_byte(Buf *b, unsigned char c) {
    RESERVE(b, 1);
    b->data[b->len++] = (char)c;
    return 0;
}

static int put_be(Buf *b, unsigned char tag, uint64_t value, int width) {
    RESERVE(b, 1 + width);
    b->data[b->len++] = (char)tag;
    for (int shift = (width - 1) * 8; shift >= 0; shift -= 8) b->data[b->len++] = (char)(value >> shift);
    return 0;
}

/* str with use_bin_type=True: fixstr, str8, str16, str32 (msgpack-python's choice) */
static int put_str_bytes(Buf *b, const char *s, Py_ssize_t n) {
    int rc;
    if (n < 32) rc = put_byte(b, 0xa0 | (unsigned char)n);
    else if (n < 256) rc = put_be(b, 0xd9, (uint64_t)n, 1);
    else if (n < 65536) rc = put_be(b, 0xda, (uint64_t)n, 2);
    else if ((uint64_t)n <= 0xffffffffULL) rc = put_be(b, 0xdb, (uint64_t)n, 4);
    else return -2;
    if (rc < 0) return rc;
    RESERVE(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

/* -1: memory error (raised); -2: not packable here (the Python path decides) */
static int put_str(Buf *b, PyObject *o) {
    if (!PyUnicode_CheckExact(o)) return -2;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s == NULL) {
        PyErr_Clear();  /* e.g. a lone surrogate: msgpack-python raises; let it */
        return -2;
    }
    return put_str_bytes(b, s, n);
}

static int put_container(Buf *b, Py_ssize_t n, unsigned char fix, unsigned char tag16, unsigned char tag32) {
    if (n < 16) return put_byte(b, fix | (unsigned char)n);
    if (n < 65536) return put_be(b, tag16, (uint64_t)n, 2);
    return put_be(b, tag32, (uint64_t)n, 4);
}

#define PUT(call) do { int rc_ = (call); if (rc_ < 0) return rc_; } while (0)

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

/* ---------------------------------------------------------------- the guest call */

typedef void *(*call_unchecked_fn)(void *context, void *func, uint64_t *args_and_results,
                                   size_t len, void **trap);
typedef size_t (*memory_size_fn)(void *context, void *memory);
typedef uint8_t *(*memory_data_fn)(void *context, void *memory);
typedef void (*set_epoch_fn)(void *context, uint64_t ticks);

/* ---------------------------------------------------------------- the epoch deadline */

typedef void *(*error_new_fn)(const char *message);
typedef void *(*deadline_callback_fn)(void *context, void *env, uint64_t *delta, uint8_t *kind);
typedef void (*set_deadline_callback_fn)(void *store, deadline_callback_fn callback, void *env,
                                         void (*finalizer)(void *));

#define UPDATE_DEADLINE_CONTINUE 0  /* wasmtime_update_deadline_kind_t: go on with the new deadline */

/* One store's deadline state, shared by the store's callback and its Python owner (each
 * holds a reference; the last one frees it, with no Python API: the store may be deleted
 * from a ctypes call, without the GIL). Used by one call at a time, on the calling thread. */
typedef struct {
    int refs;
    error_new_fn error_new;
    uint64_t tick_ns;         /* the ticker's period */
    uint64_t end_ns;          /* the current MessageCall's end (CLOCK_MONOTONIC); 0: no call, the epoch deadline is real */
    int holds_gil;            /* the current call holds the GIL (a MessageCall keeping it) */
    PyThreadState *released;  /* the thread state the callback released the GIL from, or NULL */
    char message[128];
} Deadline;

static uint64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
}

static void deadline_unref(void *env) {
    Deadline *deadline = env;
    if (__atomic_sub_fetch(&deadline->refs, 1, __ATOMIC_ACQ_REL) == 0) free(deadline);
}

/* wasmtime calls this on the thread running the guest when the store's epoch deadline is
 * reached: fail the call at its end (wall time) or outside a MessageCall, else give up the GIL
 * if the call still holds it (once per call, the first tick of a MessageCall keeping it) and
 * go on to the next tick. No Python API but the GIL release. */
static void *on_epoch_deadline(void *context, void *env, uint64_t *delta, uint8_t *kind) {
    Deadline *deadline = env;
    (void)context;
    if (deadline->end_ns == 0) return deadline->error_new(deadline->message);
    uint64_t now = monotonic_ns();
    if (now >= deadline->end_ns) return deadline->error_new(deadline->message);
    if (deadline->holds_gil) {
        deadline->holds_gil = 0;
        deadline->released = PyEval_SaveThread();  /* MessageCall_call restores it */
    }
    /* NOTE: one tick, not the ticks left: late ticks (a loaded machine, a Python ticker
     * waiting for the GIL) would add up over a long timeout; the first check after the end
     * fails the call whenever ticks come. PERF: the callback costs a clock read, once per
     * tick (100 a second) of a call that outlives one. */
    *delta = 1;
    *kind = UPDATE_DEADLINE_CONTINUE;
    return NULL;
}

/* One engine's switch: whether a call into its stores may keep the GIL (ticker.py sets it while
 * C ticker threads alone tick that engine: a tick then needs no GIL). */
typedef struct {
    PyObject_HEAD
    char keep_gil;  /* T_BOOL */
} TickSwitch;

static PyMemberDef TickSwitch_members[] = {
    {"keep_gil", T_BOOL, offsetof(TickSwitch, keep_gil), 0, "calls into the engine's stores may keep the GIL"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject TickSwitchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mwhost.runtime._accel.TickSwitch",
    .tp_basicsize = sizeof(TickSwitch),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One engine's switch: keep_gil while C ticker threads alone tick it (ticker.py).",
    .tp_new = PyType_GenericNew,
    .tp_members = TickSwitch_members,
};

typedef struct {
    PyObject_HEAD
    Deadline *deadline;
    PyObject *ticks;  /* the engine's TickSwitch */
} EpochDeadline;

static int EpochDeadline_init(EpochDeadline *self, PyObject *args, PyObject *kwargs) {
    PyObject *set_callback, *error_new, *store, *ticks;
    const char *message;
    Py_ssize_t message_len;
    unsigned long long tick_ns;
    (void)kwargs;
    if (self->deadline != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "EpochDeadline is registered already");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OOOs#O!K:EpochDeadline", &set_callback, &error_new, &store, &message, &message_len,
                          &TickSwitchType, &ticks, &tick_ns))
        return -1;
    set_deadline_callback_fn set = (set_deadline_callback_fn)PyLong_AsVoidPtr(set_callback);
    error_new_fn new_error = (error_new_fn)PyLong_AsVoidPtr(error_new);
    void *store_ptr = PyLong_AsVoidPtr(store);
    if (PyErr_Occurred()) return -1;
    if (!set || !new_error || !store_ptr) {
        PyErr_SetString(PyExc_ValueError, "EpochDeadline needs non-null addresses");
        return -1;
    }
    if (tick_ns == 0) {
        PyErr_SetString(PyExc_ValueError, "EpochDeadline needs a tick of at least 1 ns");
        return -1;
    }
    Deadline *deadline = calloc(1, sizeof *deadline);
    if (deadline == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    deadline->refs = 2;  /* this object and the store's callback */
    deadline->error_new = new_error;
    deadline->tick_ns = tick_ns;
    snprintf(deadline->message, sizeof deadline->message, "%s", message);
    self->deadline = deadline;
    self->ticks = Py_NewRef(ticks);
    set(store_ptr, on_epoch_deadline, deadline, deadline_unref);
    return 0;
}

static void EpochDeadline_dealloc(EpochDeadline *self) {
    if (self->deadline != NULL) deadline_unref(self->deadline);
    Py_XDECREF(self->ticks);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject EpochDeadlineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mwhost.runtime._accel.EpochDeadline",
    .tp_basicsize = sizeof(EpochDeadline),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One store's epoch-deadline callback (see the module docstring).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)EpochDeadline_init,
    .tp_dealloc = (destructor)EpochDeadline_dealloc,
};

/* ---------------------------------------------------------------- the message call */

typedef struct {
    PyObject_HEAD
    call_unchecked_fn call;
    memory_size_fn size;
    memory_data_fn data;
    set_epoch_fn epoch;
    void *context, *alloc, *handler, *memory;
    void **trap;
    PyObject *fail, *keep, *deadline_owner;
    Deadline *deadline;  /* the store's, or NULL: then every call releases the GIL */
    TickSwitch *ticks;   /* its engine's switch (held by deadline_owner) */
    unsigned long long max_output, deadline_ticks;  /* what a call with the data alone uses */
    unsigned long long releases;  /* calls that gave up the GIL (tests and benchmarks read it) */
    unsigned long long started_ns;  /* the last call's start (CLOCK_MONOTONIC, as time.monotonic_ns) */
    PyObject *last_output;  /* the last output (bytes), handed out again while the guest repeats it */
    uint64_t known_size;    /* the memory's size when last read (memory_at_least) */
} MessageCall;

/* the largest output kept for the next call (output_bytes); the decoded-action cache keeps
 * outputs up to 512 bytes (stage.py) */
#define LAST_OUTPUT_MAX 512

enum { FAILED_CALL = 1, ALLOC_ZERO, INPUT_OUTSIDE, RESULT_ZERO, OUTPUT_TOO_LARGE, OUTPUT_OUTSIDE };

/* hand a failure to the Python side, which raises; NULL either way */
static PyObject *fail(MessageCall *self, int code, unsigned long long a, unsigned long long b,
                      unsigned long long c) {
    PyObject *raised = PyObject_CallFunction(self->fail, "iKKK", code, a, b, c);
    if (raised != NULL) {
        Py_DECREF(raised);
        PyErr_SetString(PyExc_SystemError, "MessageCall's fail callback returned instead of raising");
    }
    return NULL;
}
#define failure(code, a, b, c) fail(self, code, a, b, c)

static void *address(PyObject *value) {
    return PyLong_AsVoidPtr(value);
}

static int MessageCall_init(MessageCall *self, PyObject *args, PyObject *kwargs) {
    PyObject *call, *size, *data, *epoch, *context, *alloc, *handler, *memory, *trap, *fail, *keep;
    PyObject *deadline = Py_None;
    (void)kwargs;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOO|O:MessageCall", &call, &size, &data, &epoch, &context,
                          &alloc, &handler, &memory, &trap, &fail, &keep, &deadline))
        return -1;
    if (!PyCallable_Check(fail)) {
        PyErr_SetString(PyExc_TypeError, "MessageCall's fail must be callable");
        return -1;
    }
    if (deadline != Py_None && (!Py_IS_TYPE(deadline, &EpochDeadlineType)
                                || ((EpochDeadline *)deadline)->deadline == NULL)) {
        PyErr_SetString(PyExc_TypeError, "MessageCall's deadline must be a registered EpochDeadline or None");
        return -1;
    }
    Py_XSETREF(self->fail, Py_NewRef(fail));
    Py_XSETREF(self->keep, Py_NewRef(keep));
    Py_XSETREF(self->deadline_owner, Py_NewRef(deadline));
    Py_CLEAR(self->last_output);  /* NOTE: another instance's memory: nothing read from the last one holds */
    self->known_size = 0;
    self->deadline = deadline == Py_None ? NULL : ((EpochDeadline *)deadline)->deadline;
    self->ticks = deadline == Py_None ? NULL : (TickSwitch *)((EpochDeadline *)deadline)->ticks;
    self->call = (call_unchecked_fn)address(call);
    self->size = (memory_size_fn)address(size);
    self->data = (memory_data_fn)address(data);
    self->epoch = (set_epoch_fn)address(epoch);
    self->context = address(context);
    self->alloc = address(alloc);
    self->handler = address(handler);
    self->memory = address(memory);
    self->trap = (void **)address(trap);
    if (PyErr_Occurred()) return -1;
    if (!self->call || !self->size || !self->data || !self->epoch || !self->context || !self->alloc
            || !self->handler || !self->memory || !self->trap) {
        PyErr_SetString(PyExc_ValueError, "MessageCall needs non-null addresses");
        return -1;
    }
    return 0;
}

/* Start a call on the store's deadline: its end in wall time, ``ticks - 1`` ticks from now
 * (module docstring; at least 1 ns, 0 meaning no call), and whether it holds the GIL. */
static void arm(Deadline *deadline, unsigned long long ticks, int holds_gil, uint64_t now) {
    uint64_t budget = 0;
    if (ticks > 1)  /* saturated far beyond any timeout: no overflow */
        budget = ticks - 1 > (UINT64_MAX / 4) / deadline->tick_ns ? UINT64_MAX / 4 : (ticks - 1) * deadline->tick_ns;
    deadline->end_ns = now + budget;
    deadline->end_ns += deadline->end_ns == 0;
    deadline->holds_gil = holds_gil;
    deadline->released = NULL;
}

/* The guest memory's size in bytes, at least ``end`` when it is that large: the size last
 * read when it covers ``end`` (a linear memory never shrinks), else read again.
 * PERF: one wasmtime call less per bounds check in the common case. */
static uint64_t memory_at_least(MessageCall *self, uint64_t end) {
    if (end > self->known_size) self->known_size = self->size(self->context, self->memory);
    return self->known_size;
}

/* The roundtrip without the GIL: mw_alloc, the bounds checks, the copy in, the handler and
 * the result's checks. 0 and the output's span, or a failure code and its arguments. */
static int roundtrip(MessageCall *self, const char *in, uint64_t size, uint64_t max_output,
                     uint64_t *out_ptr, uint64_t *out_len, unsigned long long fail_args[3]) {
    void *context = self->context, **trap = self->trap, *error;
    uint64_t vals[4] = {size, 0, 0, 0};
    error = self->call(context, self->alloc, vals, 1, trap);
    if (error || *trap) { fail_args[0] = (uintptr_t)error; return FAILED_CALL; }
    uint64_t ptr = vals[0] & 0xffffffffULL;
    uint64_t memory_size = memory_at_least(self, ptr + size);
    if (ptr == 0 && size) { fail_args[0] = size; return ALLOC_ZERO; }
    if (ptr + size > memory_size) {
        fail_args[0] = ptr; fail_args[1] = size; fail_args[2] = memory_size;
        return INPUT_OUTSIDE;
    }
    memcpy(self->data(context, self->memory) + ptr, in, size);
    vals[0] = ptr;
    vals[1] = 0;
    vals[2] = size;
    vals[3] = 0;
    error = self->call(context, self->handler, vals, 2, trap);
    if (error || *trap) { fail_args[0] = (uintptr_t)error; return FAILED_CALL; }
    uint64_t packed = vals[0];
    if (packed == 0) return RESULT_ZERO;
    *out_ptr = packed >> 32;
    *out_len = packed & 0xffffffffULL;
    if (*out_len > max_output) { fail_args[0] = *out_len; fail_args[1] = max_output; return OUTPUT_TOO_LARGE; }
    memory_size = memory_at_least(self, *out_ptr + *out_len);
    if (*out_ptr + *out_len > memory_size) {
        fail_args[0] = *out_ptr; fail_args[1] = *out_len; fail_args[2] = memory_size;
        return OUTPUT_OUTSIDE;
    }
    return 0;
}

/* the guest's output as bytes: the last output's object again when the guest answered the
 * same bytes (a constant answer: no new object, and its hash, which the decoded-action cache
 * looks up, is already computed), else a new one, kept for the next call when it is small */
static PyObject *output_bytes(MessageCall *self, const char *out, Py_ssize_t len) {
    PyObject *last = self->last_output;
    if (last != NULL && PyBytes_GET_SIZE(last) == len && memcmp(PyBytes_AS_STRING(last), out, len) == 0)
        return Py_NewRef(last);
    PyObject *result = PyBytes_FromStringAndSize(out, len);
    if (result != NULL && len <= LAST_OUTPUT_MAX) Py_XSETREF(self->last_output, Py_NewRef(result));
    return result;
}

/* one roundtrip on ``in``'s bytes (which the caller keeps alive): the output, or NULL raised */
static PyObject *message_call(MessageCall *self, const char *in_buf, Py_ssize_t in_len,
                              unsigned long long max_output, unsigned long long ticks, uint64_t now) {
    unsigned long long fail_args[3] = {0, 0, 0};
    uint64_t out_ptr = 0, out_len = 0;
    int code;
    Deadline *deadline = self->deadline;
    int keep = deadline != NULL && self->ticks->keep_gil;
    /* NOTE: the start, for a guest's poll_oneoff (StoreState.deadline_ns): a guest that can
     * wait needs no clock read in Python per call (GuestInstance.request_call) */
    self->started_ns = now ? now : monotonic_ns();
    if (deadline != NULL) {
        arm(deadline, ticks, keep, self->started_ns);
        /* NOTE: the callback sees every tick of the call and ends it at its wall-time end */
        self->epoch(self->context, 1);
    } else {
        self->epoch(self->context, ticks);
    }
    if (keep) {
        /* PERF: keep the GIL; the callback gives it up at the first tick (module docstring) */
        code = roundtrip(self, in_buf, (uint64_t)in_len, max_output, &out_ptr, &out_len, fail_args);
        if (deadline->released != NULL) {
            PyEval_RestoreThread(deadline->released);
            deadline->released = NULL;
            self->releases++;
        }
    } else {
        self->releases++;
        /* NOTE: one GIL release for the whole roundtrip (both guest calls and the copy in,
         * which reads the bytes object ``in`` keeps alive), not one per guest call; the
         * failure, which runs Python, is raised after the GIL is back. */
        Py_BEGIN_ALLOW_THREADS
        code = roundtrip(self, in_buf, (uint64_t)in_len, max_output, &out_ptr, &out_len, fail_args);
        Py_END_ALLOW_THREADS
    }
    if (deadline != NULL) {  /* any other call into this store: its epoch deadline is real */
        deadline->end_ns = 0;
        deadline->holds_gil = 0;
    }
    if (code) return failure(code, fail_args[0], fail_args[1], fail_args[2]);
    return output_bytes(self, (const char *)self->data(self->context, self->memory) + out_ptr, (Py_ssize_t)out_len);
}

/* (data: bytes, max_output: int, deadline_ticks: int), or (data) with the members' limits */
static PyObject *MessageCall_call(MessageCall *self, PyObject *args, PyObject *kwargs) {
    Py_buffer in;
    (void)kwargs;
    if (self->fail == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "MessageCall was not initialised");
        return NULL;
    }
    unsigned long long max_output = self->max_output, ticks = self->deadline_ticks;
    /* PERF: (data) alone takes the limits set once per instance (GuestInstance.request_call) */
    if (PyTuple_GET_SIZE(args) == 1 ? !PyArg_ParseTuple(args, "y*", &in)
                                    : !PyArg_ParseTuple(args, "y*KK", &in, &max_output, &ticks))
        return NULL;
    PyObject *result = message_call(self, in.buf, in.len, max_output, ticks, 0);
    PyBuffer_Release(&in);
    return result;
}

static void MessageCall_dealloc(MessageCall *self) {
    Py_XDECREF(self->fail);
    Py_XDECREF(self->keep);
    Py_XDECREF(self->deadline_owner);
    Py_XDECREF(self->last_output);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef MessageCall_members[] = {
    {"max_output", T_ULONGLONG, offsetof(MessageCall, max_output), 0, "the output limit of a (data) call"},
    {"deadline", T_ULONGLONG, offsetof(MessageCall, deadline_ticks), 0, "the epoch ticks of a (data) call"},
    {"releases", T_ULONGLONG, offsetof(MessageCall, releases), READONLY, "calls that gave up the GIL"},
    {"started_ns", T_ULONGLONG, offsetof(MessageCall, started_ns), READONLY,
     "the last call's start on the monotonic clock (time.monotonic_ns), 0 before the first"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject MessageCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mwhost.runtime._accel.MessageCall",
    .tp_basicsize = sizeof(MessageCall),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One ABI message roundtrip on one instance (see fastcall.MessageCall).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)MessageCall_init,
    .tp_dealloc = (destructor)MessageCall_dealloc,
    .tp_call = (ternaryfunc)MessageCall_call,
    .tp_members = MessageCall_members,
};

/* ---------------------------------------------------------------- the call tally */

/* Tally(bounds): ok calls counted into a duration histogram, for a PhaseMeter (host/metrics.py).
 * PERF: the C request phase counts each call here (no float object, no deque append, no
 * later fold in Python); the meter's take() reads and resets it under the GIL. A call of
 * ``seconds`` lands in bucket bisect_left(bounds, seconds), as PhaseMeter._fold counts. */
#define TALLY_MAX_BOUNDS 64

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    double bounds[TALLY_MAX_BOUNDS];
    unsigned long long counts[TALLY_MAX_BOUNDS + 1];
    unsigned long long calls;
    double total;
} Tally;

static PyTypeObject TallyType;

static void tally_add(Tally *self, double seconds) {
    Py_ssize_t i = 0;
    while (i < self->n && self->bounds[i] < seconds) i++;
    self->counts[i]++;
    self->calls++;
    self->total += seconds;
}

static int Tally_init(Tally *self, PyObject *args, PyObject *kwargs) {
    PyObject *bounds;
    (void)kwargs;
    if (!PyArg_ParseTuple(args, "O:Tally", &bounds)) return -1;
    PyObject *seq = PySequence_Fast(bounds, "Tally's bounds must be a sequence of floats");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > TALLY_MAX_BOUNDS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "Tally takes at most %d bounds", TALLY_MAX_BOUNDS);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double bound = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (bound == -1.0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        if (i > 0 && bound <= self->bounds[i - 1]) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "Tally's bounds must increase");
            return -1;
        }
        self->bounds[i] = bound;
    }
    Py_DECREF(seq);
    self->n = n;
    memset(self->counts, 0, sizeof(self->counts));
    self->calls = 0;
    self->total = 0.0;
    return 0;
}

static PyObject *Tally_add(Tally *self, PyObject *arg) {
    double seconds = PyFloat_AsDouble(arg);
    if (seconds == -1.0 && PyErr_Occurred()) return NULL;
    tally_add(self, seconds);
    Py_RETURN_NONE;
}

/* (calls, [count per bucket], total seconds) since the last take, reset to zero */
static PyObject *Tally_take(Tally *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *counts = PyList_New(self->n + 1);
    if (counts == NULL) return NULL;
    for (Py_ssize_t i = 0; i <= self->n; i++) {
        PyObject *count = PyLong_FromUnsignedLongLong(self->counts[i]);
        if (count == NULL) {
            Py_DECREF(counts);
            return NULL;
        }
        PyList_SET_ITEM(counts, i, count);
    }
    PyObject *taken = Py_BuildValue("(KNd)", self->calls, counts, self->total);
    if (taken == NULL) return NULL;
    memset(self->counts, 0, sizeof(self->counts));
    self->calls = 0;
    self->total = 0.0;
    return taken;
}

static PyMethodDef Tally_methods[] = {
    {"add", (PyCFunction)Tally_add, METH_O, "add(seconds): count one call"},
    {"take", (PyCFunction)Tally_take, METH_NOARGS, "take() -> (calls, counts, total), reset to zero"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TallyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mwhost.runtime._accel.Tally",
    .tp_basicsize = sizeof(Tally),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Ok calls counted into a duration histogram in C (see host/metrics.py PhaseMeter).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Tally_init,
    .tp_methods = Tally_methods,
};

/* ---------------------------------------------------------------- module */

static PyObject *run_stages(PyObject *self, PyObject *const *args, Py_ssize_t nargs);  /* at the end */
static PyObject *clone_state(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
static PyObject *write_edits(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
static PyObject *set_response_headers(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
static PyTypeObject RequestEdgeType;  /* at the end */

static PyMethodDef methods[] = {
    {"environ_headers", (PyCFunction)(void (*)(void))environ_headers, METH_FASTCALL,
     "environ_headers(environ, names) -> list of (name, value)"},
    {"header_entries", (PyCFunction)(void (*)(void))header_entries, METH_FASTCALL,
     "header_entries(environ) -> HeaderEntries | None: the environ's headers packed once"},
    {"pack_request", (PyCFunction)(void (*)(void))pack_request, METH_FASTCALL,
     "pack_request(method, path, query, headers, remote_addr, scheme, ctx[, removed, added]) -> bytes | None"},
    {"run_stages", (PyCFunction)(void (*)(void))run_stages, METH_FASTCALL,
     "run_stages(preps, state, index, CONTINUE) -> (index, outcome): plain stages' request calls"},
    {"clone_state", (PyCFunction)(void (*)(void))clone_state, METH_FASTCALL,
     "clone_state(proto, method, path, query, remote_addr, scheme, environ) -> a new RequestState"},
    {"write_edits", (PyCFunction)(void (*)(void))write_edits, METH_FASTCALL,
     "write_edits(environ, state, keys) -> bool: one added pair per edited name, written"},
    {"set_response_headers", (PyCFunction)(void (*)(void))set_response_headers, METH_FASTCALL,
     "set_response_headers(headers, ran) -> bool: the stages' single response headers, set"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mwhost.runtime._accel",
    "The per-request hot path in C; host/runtime/accel.py selects it.", -1, methods,
};

PyMODINIT_FUNC PyInit__accel(void) {
    /* the exported types, each readied and added under the last part of its tp_name */
    PyTypeObject *const exported[] = {&MessageCallType, &EpochDeadlineType, &TickSwitchType, &TallyType,
                                     &RequestEdgeType};
    if (PyType_Ready(&HeaderEntriesType) < 0) return NULL;  /* made by header_entries only */
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    for (size_t i = 0; i < sizeof exported / sizeof exported[0]; i++)
        if (PyModule_AddType(m, exported[i]) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    return m;
}

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

/* ---------------------------------------------------------------- the request edge */

/* RequestEdge(holder, prototype, keys, cont, request_type).enter(req) -> None | False | tuple
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
 * A ``req`` of ``request_type`` exactly (falcon.Request) has its remote_addr and scheme
 * read from the environ as falcon's properties read them; any other class's through its
 * attributes. PERF twin of WasmMiddleware._process_request, the reference: the tests in
 * tests/web run every case through both, and tests/runtime/test_accel_edges.py each answer.
 * PERF: in a loaded server the Python prefix and suffix of the request phase (two frames,
 * falcon's two property frames, ~60 bytecodes, three C calls' arguments) cost ~4 us on
 * cold caches; this is one call (bench/REPORT.md section 1g). */
typedef struct {
    PyObject_HEAD
    PyObject *holder, *prototype, *keys, *cont, *request_type;
} RequestEdge;

static const char *const edge_name_text[] = {
    "current", "stages", "_preps", "path", "method", "query_string", "env", "remote_addr", "scheme",
    "context", "mwhost", "edited_target", "_cached_headers", "_cached_headers_lower", "REMOTE_ADDR",
    "wsgi.url_scheme", "HTTP_TRACEPARENT", "traceparent", "/_admin/", "/metrics", "127.0.0.1", "",
};
enum { E_CURRENT, E_STAGES, E_PREPS, E_PATH, E_METHOD, E_QUERY_STRING, E_ENV, E_REMOTE_ADDR, E_SCHEME,
       E_CONTEXT, E_MWHOST, E_EDITED_TARGET, E_CACHED_HEADERS, E_CACHED_HEADERS_LOWER, E_REMOTE_ADDR_KEY,
       E_SCHEME_KEY, E_TRACEPARENT_KEY, E_TRACEPARENT, E_ADMIN_PREFIX, E_METRICS_PATH, E_LOCALHOST,
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
    PyObject *holder, *prototype, *keys, *cont, *request_type;
    static char *kwlist[] = {"holder", "prototype", "keys", "cont", "request_type", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO:RequestEdge", kwlist, &holder, &prototype, &keys,
                                     &cont, &request_type))
        return -1;
    if (edge_names_ready() < 0) return -1;
    Py_XSETREF(self->holder, Py_NewRef(holder));
    Py_XSETREF(self->prototype, Py_NewRef(prototype));
    Py_XSETREF(self->keys, Py_NewRef(keys));
    Py_XSETREF(self->cont, Py_NewRef(cont));
    Py_XSETREF(self->request_type, Py_NewRef(request_type));
    return 0;
}

static void RequestEdge_dealloc(RequestEdge *self) {
    Py_XDECREF(self->holder);
    Py_XDECREF(self->prototype);
    Py_XDECREF(self->keys);
    Py_XDECREF(self->cont);
    Py_XDECREF(self->request_type);
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
    if (PyUnicode_Tailmatch(path, edge_names[E_ADMIN_PREFIX], 0, PY_SSIZE_T_MAX, -1) == 1) {
        /* NOTE: the control plane: no stage sees it (process_request's rule) */
        answer = Py_NewRef(Py_None);
        goto done;
    }
    if ((PyUnicode_GET_LENGTH(path) > 1 && PyUnicode_READ_CHAR(path, 1) == '/')
            || PyUnicode_Tailmatch(path, edge_names[E_METRICS_PATH], 0, PY_SSIZE_T_MAX, -1) == 1) {
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
