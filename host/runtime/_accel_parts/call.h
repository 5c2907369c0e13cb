/* mwhost.runtime._accel, part: the guest call: wasmtime's C functions, the epoch deadline, MessageCall.
 * One translation unit: host/runtime/_accel.c includes the parts in order (each uses the
 * ones before it); never compiled on its own. */

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
