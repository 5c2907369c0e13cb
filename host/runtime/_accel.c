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
 *
 * The code is in host/runtime/_accel_parts/, one file per piece, included below in order:
 * one translation unit, so the compiler sees (and inlines across) all of it as before.
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

/* the parts, in order (each uses the ones before it) */
#include "_accel_parts/msgpack.h"
#include "_accel_parts/headers.h"
#include "_accel_parts/call.h"
#include "_accel_parts/tally.h"
#include "_accel_parts/stages.h"
#include "_accel_parts/edges.h"
#include "_accel_parts/request_edge.h"

/* ---------------------------------------------------------------- module */

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
