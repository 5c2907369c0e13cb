/* mwhost.runtime._accel, part: the call tally (Tally, a C histogram for PhaseMeter).
 * One translation unit: host/runtime/_accel.c includes the parts in order (each uses the
 * ones before it); never compiled on its own. */

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
