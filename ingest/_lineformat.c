/*
 * The inner loop of the ingester's line protocol encoder (ingest/points.py, LineEncoder._format),
 * in C: rows given by columns, written into one template per group.
 *
 *   format_rows(pieces, kinds, columns) -> list[str]
 *
 * pieces:  the template's literal text, one more piece than slots (tuple of str)
 * kinds:   one byte per slot: 't' text, 'q' a str written as a quoted string field (in double
 *          quotes, with '"' and '\\' escaped by a backslash, as storage.lineprotocol.quote_string
 *          writes it), 'i' an int written in decimal
 * columns: one per slot: a sequence with the value of each row, all of the same length; a 't'
 *          column may instead be the bytes of a JSON array of numbers (msgspec's encoding of a
 *          float column, checked by the caller), whose texts are taken one by one
 *
 * Line i is pieces[0] + text(columns[0][i]) + pieces[1] + ... + pieces[-1], exactly what
 * ``template % row`` gives in ingest/points.py: a value of a 't' or 'i' column that is not a str
 * or an int is written as str() writes it, as '%s' does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) {
        return 0;
    }
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

/* The decimal digits of m (m < 10^20), most significant first; returns how many. */
static int digits_of(unsigned long long m, char *out) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m);
    for (int i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    return n;
}

/* The UTF-8 text of a str (str() of anything else), appended; *ascii cleared if it is not ASCII. */
static int put_text(Buf *b, PyObject *value, int *ascii) {
    Py_ssize_t n;
    const char *s;
    if (PyUnicode_CheckExact(value)) {
        if (!PyUnicode_IS_ASCII(value)) {
            *ascii = 0;
        }
        s = PyUnicode_AsUTF8AndSize(value, &n);
        if (s == NULL) {
            return -1;
        }
        return buf_put(b, s, n);
    }
    PyObject *text = PyObject_Str(value);
    if (text == NULL) {
        return -1;
    }
    if (!PyUnicode_IS_ASCII(text)) {
        *ascii = 0;
    }
    s = PyUnicode_AsUTF8AndSize(text, &n);
    int rc = s == NULL ? -1 : buf_put(b, s, n);
    Py_DECREF(text);
    return rc;
}

/* A str as a quoted string field value. */
static int put_quoted(Buf *b, PyObject *value, int *ascii) {
    if (!PyUnicode_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "format_rows: a 'q' column holds a value that is not a str");
        return -1;
    }
    if (!PyUnicode_IS_ASCII(value)) {
        *ascii = 0;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(value, &n);
    if (s == NULL || buf_reserve(b, 2 * n + 2) < 0) {
        return -1;
    }
    char *w = b->data + b->len;
    *w++ = '"';
    for (Py_ssize_t k = 0; k < n; k++) { /* UTF-8 continuation bytes are never '"' or '\\' */
        if (s[k] == '"' || s[k] == '\\') {
            *w++ = '\\';
        }
        *w++ = s[k];
    }
    *w++ = '"';
    b->len = w - b->data;
    return 0;
}

static int put_int(Buf *b, PyObject *value, int *ascii) {
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (!overflow) {
            if (x == -1 && PyErr_Occurred()) {
                return -1;
            }
            char digits[24];
            int neg = x < 0;
            unsigned long long m = neg ? 0ULL - (unsigned long long)x : (unsigned long long)x;
            int nd = digits_of(m, digits);
            if (neg && buf_put(b, "-", 1) < 0) {
                return -1;
            }
            return buf_put(b, digits, nd);
        }
    }
    return put_text(b, value, ascii);
}

static PyObject *format_rows(PyObject *self, PyObject *args) {
    PyObject *pieces, *columns;
    const char *kinds;
    Py_ssize_t nslots;
    if (!PyArg_ParseTuple(args, "O!y#O", &PyTuple_Type, &pieces, &kinds, &nslots, &columns)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(pieces) != nslots + 1) {
        PyErr_SetString(PyExc_ValueError, "format_rows: need one more piece than kinds");
        return NULL;
    }
    for (Py_ssize_t j = 0; j < nslots; j++) {
        if (kinds[j] != 't' && kinds[j] != 'q' && kinds[j] != 'i') {
            PyErr_Format(PyExc_ValueError, "format_rows: unknown kind %c", kinds[j]);
            return NULL;
        }
    }
    PyObject *cols = PySequence_Fast(columns, "format_rows: columns must be a sequence");
    if (cols == NULL) {
        return NULL;
    }
    PyObject *result = NULL;
    PyObject **seqs = NULL;
    const char **cursor = NULL, **blob_end = NULL;
    const char **piece_text = NULL;
    Py_ssize_t *piece_len = NULL;
    Buf b = {NULL, 0, 0};
    if (PySequence_Fast_GET_SIZE(cols) != nslots) {
        PyErr_SetString(PyExc_ValueError, "format_rows: need one column per kind");
        goto done;
    }
    seqs = PyMem_Calloc((size_t)(nslots ? nslots : 1), sizeof(PyObject *));
    cursor = PyMem_Calloc((size_t)(nslots ? nslots : 1), sizeof(char *));
    blob_end = PyMem_Calloc((size_t)(nslots ? nslots : 1), sizeof(char *));
    piece_text = PyMem_Calloc((size_t)nslots + 1, sizeof(char *));
    piece_len = PyMem_Calloc((size_t)nslots + 1, sizeof(Py_ssize_t));
    if (seqs == NULL || cursor == NULL || blob_end == NULL || piece_text == NULL || piece_len == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int pieces_ascii = 1;
    for (Py_ssize_t j = 0; j <= nslots; j++) {
        PyObject *piece = PyTuple_GET_ITEM(pieces, j);
        if (!PyUnicode_Check(piece)) {
            PyErr_SetString(PyExc_TypeError, "format_rows: pieces must be str");
            goto done;
        }
        if (!PyUnicode_IS_ASCII(piece)) {
            pieces_ascii = 0;
        }
        piece_text[j] = PyUnicode_AsUTF8AndSize(piece, &piece_len[j]);
        if (piece_text[j] == NULL) {
            goto done;
        }
    }
    Py_ssize_t m = -1;
    for (Py_ssize_t j = 0; j < nslots; j++) {
        PyObject *column = PySequence_Fast_GET_ITEM(cols, j);
        if (kinds[j] == 't' && PyBytes_Check(column)) {
            const char *blob = PyBytes_AS_STRING(column);
            Py_ssize_t n = PyBytes_GET_SIZE(column);
            if (n < 2 || blob[0] != '[' || blob[n - 1] != ']') {
                PyErr_SetString(PyExc_ValueError, "format_rows: a bytes column must be a JSON array");
                goto done;
            }
            cursor[j] = blob + 1;
            blob_end[j] = blob + n - 1;
            continue;
        }
        seqs[j] = PySequence_Fast(column, "format_rows: a column must be a sequence");
        if (seqs[j] == NULL) {
            goto done;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seqs[j]);
        if (m >= 0 && n != m) {
            PyErr_SetString(PyExc_ValueError, "format_rows: columns of different lengths");
            goto done;
        }
        m = n;
    }
    if (m < 0) {
        PyErr_SetString(PyExc_ValueError, "format_rows: need a column that is a sequence");
        goto done;
    }
    result = PyList_New(m);
    if (result == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        int ascii = pieces_ascii;
        b.len = 0;
        if (buf_put(&b, piece_text[0], piece_len[0]) < 0) {
            goto fail;
        }
        for (Py_ssize_t j = 0; j < nslots; j++) {
            int rc;
            if (seqs[j] == NULL) { /* the next number of a JSON array */
                const char *at = cursor[j];
                const char *stop = at;
                while (stop < blob_end[j] && *stop != ',') {
                    stop++;
                }
                if (stop == at) {
                    PyErr_SetString(PyExc_ValueError, "format_rows: a bytes column has fewer values than rows");
                    goto fail;
                }
                rc = buf_put(&b, at, stop - at);
                cursor[j] = stop < blob_end[j] ? stop + 1 : stop;
            } else {
                PyObject *value = PySequence_Fast_ITEMS(seqs[j])[i];
                rc = kinds[j] == 'i'   ? put_int(&b, value, &ascii)
                     : kinds[j] == 'q' ? put_quoted(&b, value, &ascii)
                                       : put_text(&b, value, &ascii);
            }
            if (rc < 0 || buf_put(&b, piece_text[j + 1], piece_len[j + 1]) < 0) {
                goto fail;
            }
        }
        PyObject *line;
        if (ascii) {
            line = PyUnicode_New(b.len, 127);
            if (line != NULL) {
                memcpy(PyUnicode_DATA(line), b.data, (size_t)b.len);
            }
        } else {
            line = PyUnicode_DecodeUTF8(b.data, b.len, "strict");
        }
        if (line == NULL) {
            goto fail;
        }
        PyList_SET_ITEM(result, i, line);
    }
    for (Py_ssize_t j = 0; j < nslots; j++) {
        if (seqs[j] == NULL && cursor[j] != blob_end[j]) {
            PyErr_SetString(PyExc_ValueError, "format_rows: a bytes column has more values than rows");
            goto fail;
        }
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    if (seqs != NULL) {
        for (Py_ssize_t j = 0; j < nslots; j++) {
            Py_XDECREF(seqs[j]);
        }
    }
    PyMem_Free(seqs);
    PyMem_Free(cursor);
    PyMem_Free(blob_end);
    PyMem_Free(piece_text);
    PyMem_Free(piece_len);
    PyMem_Free(b.data);
    Py_DECREF(cols);
    return result;
}

static PyMethodDef methods[] = {
    {"format_rows", format_rows, METH_VARARGS,
     "format_rows(pieces, kinds, columns) -> list[str]: one line per row (see the module)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ingest._lineformat",
    "Line protocol rows written from columns (the inner loop of ingest.points.LineEncoder).", -1, methods,
};

PyMODINIT_FUNC PyInit__lineformat(void) { return PyModule_Create(&module); }
