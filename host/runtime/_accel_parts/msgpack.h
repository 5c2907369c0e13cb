/* mwhost.runtime._accel, part: the msgpack writer (a growable buffer).
 * One translation unit: host/runtime/_accel.c includes the parts in order (each uses the
 * ones before it); never compiled on its own. */

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
