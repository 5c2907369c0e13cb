/* mwhost.runtime._ticker: the epoch ticker as a C thread (issue 13, round 4).
 *
 *   Ticker(increment, engine, period_ns, keep)
 *       A thread that calls ``increment(engine)`` (the address of wasmtime's
 *       ``wasmtime_engine_increment_epoch`` and of a ``wasm_engine_t``) every ``period_ns``
 *       until ``stop()``. No Python runs on a tick, so a tick never takes the GIL from a
 *       request (a Python ticker thread does, whenever a guest call releases it). ``keep``
 *       (the wasmtime.Engine) is held until the thread has ended: the engine outlives every tick.
 *   .stop()
 *       Ends the thread and waits for it (idempotent; also on deallocation). In a forked
 *       child, where the thread does not exist, it only marks the ticker stopped.
 *
 * host/runtime/ticker.py selects it; without this build, a Python thread ticks instead.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

typedef void (*increment_fn)(void *engine);

typedef struct {
    PyObject_HEAD
    increment_fn increment;
    void *engine;
    long long period_ns;
    PyObject *keep;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
    int running;
    pid_t pid;
} Ticker;

static void add_ns(struct timespec *t, long long ns) {
    long long total = (long long)t->tv_nsec + ns;
    t->tv_sec += (time_t)(total / 1000000000LL);
    t->tv_nsec = (long)(total % 1000000000LL);
}

static void *tick_loop(void *arg) {
    Ticker *t = arg;
    struct timespec next;
    pthread_mutex_lock(&t->lock);
    while (!t->stopping) {
        /* NOTE: the next tick is a period after this one ended, as the Python ticker's
         * Event.wait(interval): a stalled machine never gets a burst of catch-up ticks. */
        clock_gettime(CLOCK_MONOTONIC, &next);
        add_ns(&next, t->period_ns);
        int rc = 0;
        while (!t->stopping && rc != ETIMEDOUT) {
            rc = pthread_cond_timedwait(&t->wake, &t->lock, &next);
        }
        if (!t->stopping) t->increment(t->engine);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static void ticker_stop(Ticker *t) {
    if (!t->running) return;
    t->running = 0;
    if (t->pid != getpid()) return;  /* a forked child: the thread was never here */
    pthread_mutex_lock(&t->lock);
    t->stopping = 1;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
}

static int Ticker_init(Ticker *self, PyObject *args, PyObject *kwargs) {
    unsigned long long increment, engine;
    long long period_ns;
    PyObject *keep;
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "the ticker is running already");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "KKLO:Ticker", &increment, &engine, &period_ns, &keep)) return -1;
    if (increment == 0 || engine == 0 || period_ns <= 0) {
        PyErr_SetString(PyExc_ValueError, "Ticker needs a function, an engine and a positive period");
        return -1;
    }
    self->increment = (increment_fn)(uintptr_t)increment;
    self->engine = (void *)(uintptr_t)engine;
    self->period_ns = period_ns;
    Py_INCREF(keep);
    Py_XSETREF(self->keep, keep);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&self->lock, NULL);
    self->stopping = 0;
    self->pid = getpid();
    /* NOTE: the thread starts with every signal blocked, so signals keep reaching Python's
     * main thread (gunicorn's worker handles them there). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&self->thread, NULL, tick_loop, self);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->running = 1;
    return 0;
}

static PyObject *Ticker_stop(Ticker *self, PyObject *unused) {
    Py_BEGIN_ALLOW_THREADS
    ticker_stop(self);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *Ticker_running(Ticker *self, void *closure) {
    return PyBool_FromLong(self->running && self->pid == getpid());
}

static void Ticker_dealloc(Ticker *self) {
    ticker_stop(self);  /* NOTE: never waits long: the thread holds no lock but for a tick */
    Py_CLEAR(self->keep);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Ticker_methods[] = {
    {"stop", (PyCFunction)Ticker_stop, METH_NOARGS, "end the thread and wait for it"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Ticker_getset[] = {
    {"running", (getter)Ticker_running, NULL, "whether this process's thread is ticking", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TickerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mwhost.runtime._ticker.Ticker",
    .tp_basicsize = sizeof(Ticker),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Ticker(increment, engine, period_ns, keep): calls increment(engine) every period from a C thread",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ticker_init,
    .tp_dealloc = (destructor)Ticker_dealloc,
    .tp_methods = Ticker_methods,
    .tp_getset = Ticker_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mwhost.runtime._ticker",
    "The epoch ticker as a C thread; host/runtime/ticker.py selects it.", -1, NULL,
};

PyMODINIT_FUNC PyInit__ticker(void) {
    if (PyType_Ready(&TickerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&TickerType);
    if (PyModule_AddObject(m, "Ticker", (PyObject *)&TickerType) < 0) {
        Py_DECREF(&TickerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
