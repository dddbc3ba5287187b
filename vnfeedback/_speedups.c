/* The inner loop of vnfeedback's batch prediction, in C.
 *
 * ``scores`` turns each text's table rows (its syllables and the n-grams found in it) into the
 * linear scores X @ W that the numpy path computes with a sparse product, a sort of every row's
 * columns, tf-idf weighting, per-view L2 normalisation and a sparse-dense product, doing the same
 * floating-point operations in the same order, so the two paths agree to the last bit (the tests
 * hold them to it). Nothing here allocates Python objects or calls back into Python; the GIL is
 * released while it runs.
 *
 * Optional: when it cannot be built (no C compiler), vnfeedback runs the numpy path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)(address))
#endif

static void insertion_sort(int64_t *a, Py_ssize_t n) {
    for (Py_ssize_t i = 1; i < n; i++) {
        int64_t v = a[i];
        Py_ssize_t j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

/* LSD radix sort of non-negative keys below 2^(6 * passes), 6 bits a pass (64 buckets: cheap to
 * clear for the ~150 columns of a comment, and no branch to mispredict); tmp holds n values */
static void sort_columns(int64_t *a, int64_t *tmp, Py_ssize_t n, int passes) {
    if (n < 24) {
        insertion_sort(a, n);
        return;
    }
    int64_t *from = a, *to = tmp;
    for (int pass = 0; pass < passes; pass++) {
        int shift = 6 * pass;
        Py_ssize_t count[65] = {0};
        for (Py_ssize_t i = 0; i < n; i++) count[((from[i] >> shift) & 63) + 1]++;
        for (int d = 0; d < 64; d++) count[d + 1] += count[d];
        for (Py_ssize_t i = 0; i < n; i++) to[count[(from[i] >> shift) & 63]++] = from[i];
        int64_t *t = from;
        from = to;
        to = t;
    }
    if (from != a) memcpy(a, from, (size_t)n * sizeof(int64_t));
}

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if (view->itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "%s: expected items of %zd bytes, got %zd", name, itemsize, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

#define N_BUFFERS 8 /* the arrays before n_views, and out */
#define MAX_BLOCKS 64

static PyObject *scores(PyObject *self, PyObject *args) {
    PyObject *objects[N_BUFFERS], *blocks_obj;
    Py_ssize_t n_views;
    if (!PyArg_ParseTuple(args, "OOOOOOOnOO", &objects[0], &objects[1], &objects[2], &objects[3], &objects[4],
                          &objects[5], &objects[6], &n_views, &blocks_obj, &objects[7]))
        return NULL;
    if (!PyTuple_Check(blocks_obj) || PyTuple_GET_SIZE(blocks_obj) < 1 || PyTuple_GET_SIZE(blocks_obj) > MAX_BLOCKS) {
        PyErr_SetString(PyExc_TypeError, "scores: coef must be a tuple of 1 to 64 arrays");
        return NULL;
    }
    static const char *names[N_BUFFERS] = {"indptr", "entries", "table_indptr", "table_indices",
                                           "tf",     "idf",     "view_of_column", "out"};
    Py_buffer b[N_BUFFERS], cb[MAX_BLOCKS];
    Py_ssize_t n_blocks = PyTuple_GET_SIZE(blocks_obj), width[MAX_BLOCKS];
    const double *w[MAX_BLOCKS];
    int got = 0, got_blocks = 0;
    for (; got < N_BUFFERS; got++)
        if (get_buffer(objects[got], &b[got], got == N_BUFFERS - 1, 8, names[got]) < 0) goto fail;
    for (; got_blocks < n_blocks; got_blocks++)
        if (get_buffer(PyTuple_GET_ITEM(blocks_obj, got_blocks), &cb[got_blocks], 0, 8, "coef") < 0) goto fail;

    const int64_t *indptr = b[0].buf, *entries = b[1].buf, *table_indptr = b[2].buf, *table_indices = b[3].buf;
    const double *tf = b[4].buf, *idf = b[5].buf;
    const int64_t *view_of_column = b[6].buf;
    double *out = b[7].buf;
    Py_ssize_t n_texts = b[0].len / 8 - 1, n_entries = b[1].len / 8, n_rows = b[2].len / 8 - 1;
    Py_ssize_t n_table = b[3].len / 8, n_tf = b[4].len / 8, n_columns = b[5].len / 8, n_labels = 0;
    if (n_texts < 0 || n_rows < 0 || n_columns == 0 || b[6].len / 8 != n_columns || n_views < 1) {
        PyErr_SetString(PyExc_ValueError, "scores: inconsistent array sizes");
        goto fail;
    }
    /* block j holds the coefficients of width[j] outputs, column c's at w[j] + c * width[j]; the outputs
     * of all blocks lie side by side in out */
    for (Py_ssize_t j = 0; j < n_blocks; j++) {
        if (cb[j].len % (8 * n_columns) != 0) {
            PyErr_SetString(PyExc_ValueError, "scores: a coef block is not n_columns x n_outputs");
            goto fail;
        }
        w[j] = cb[j].buf;
        width[j] = cb[j].len / 8 / n_columns;
        n_labels += width[j];
    }
    if (b[7].len / 8 != n_texts * n_labels) {
        PyErr_SetString(PyExc_ValueError, "scores: out must hold n_texts x n_labels values");
        goto fail;
    }
    for (Py_ssize_t c = 0; c < n_columns; c++)
        if (view_of_column[c] < 0 || view_of_column[c] >= n_views) {
            PyErr_SetString(PyExc_ValueError, "scores: view_of_column out of range");
            goto fail;
        }

    int32_t *counts = calloc((size_t)n_columns, sizeof(int32_t));
    int64_t *touched = malloc((size_t)n_columns * sizeof(int64_t));
    int64_t *scratch = malloc((size_t)n_columns * sizeof(int64_t));
    double *values = malloc((size_t)n_columns * sizeof(double));
    double *sums = malloc((size_t)n_views * sizeof(double));
    if (!counts || !touched || !scratch || !values || !sums) {
        free(counts), free(touched), free(scratch), free(values), free(sums);
        PyErr_NoMemory();
        goto fail;
    }
    int passes = 1;
    while (passes < 11 && ((int64_t)n_columns - 1) >> (6 * passes)) passes++;
    int status = 0; /* 1: an index out of range, 2: a count past the tf table */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_texts && !status; i++) {
        Py_ssize_t k = 0;
        int64_t start = indptr[i], end = indptr[i + 1];
        if (start < 0 || end < start || end > n_entries) {
            status = 1;
            break;
        }
        for (int64_t e = start; e < end; e++) {
            int64_t row = entries[e];
            if (row < 0 || row >= n_rows || table_indptr[row] < 0 || table_indptr[row + 1] > n_table ||
                table_indptr[row + 1] < table_indptr[row]) {
                status = 1;
                break;
            }
            for (int64_t t = table_indptr[row]; t < table_indptr[row + 1]; t++) {
                int64_t c = table_indices[t];
                if (c < 0 || c >= n_columns) {
                    status = 1;
                    break;
                }
                if (counts[c]++ == 0) touched[k++] = c;
            }
            if (status) break;
        }
        if (!status) {
            sort_columns(touched, scratch, k, passes);
            for (Py_ssize_t v = 0; v < n_views; v++) sums[v] = 0.0;
            for (Py_ssize_t q = 0; q < k; q++) {
                int64_t c = touched[q];
                /* the scores loop below reads this column's coefficients: ask for them now */
                for (Py_ssize_t j = 0; j < n_blocks; j++)
                    for (Py_ssize_t l = 0; l < width[j]; l += 8) PREFETCH(w[j] + c * width[j] + l);
                if (counts[c] >= n_tf) {
                    status = 2;
                    break;
                }
                double value = tf[counts[c]] * idf[c];
                values[q] = value;
                double square = value * value;
                sums[view_of_column[c]] += square;
            }
        }
        if (!status) {
            for (Py_ssize_t v = 0; v < n_views; v++) sums[v] = sqrt(sums[v]);
            double *y = out + i * n_labels;
            for (Py_ssize_t q = 0; q < k; q++) {
                int64_t c = touched[q];
                double x = values[q] / sums[view_of_column[c]];
                double *yj = y;
                for (Py_ssize_t j = 0; j < n_blocks; j++) {
                    const double *wj = w[j] + c * width[j];
                    for (Py_ssize_t l = 0; l < width[j]; l++) {
                        double product = x * wj[l];
                        yj[l] += product;
                    }
                    yj += width[j];
                }
            }
        }
        for (Py_ssize_t q = 0; q < k; q++) counts[touched[q]] = 0;
    }
    Py_END_ALLOW_THREADS
    free(counts), free(touched), free(scratch), free(values), free(sums);
    for (int j = 0; j < got; j++) PyBuffer_Release(&b[j]);
    for (int j = 0; j < got_blocks; j++) PyBuffer_Release(&cb[j]);
    if (status == 1) {
        PyErr_SetString(PyExc_IndexError, "scores: an index out of range");
        return NULL;
    }
    return PyBool_FromLong(status == 0);

fail:
    for (int j = 0; j < got; j++) PyBuffer_Release(&b[j]);
    for (int j = 0; j < got_blocks; j++) PyBuffer_Release(&cb[j]);
    return NULL;
}

/* An open-addressing hash table (linear probing) over distinct int64 keys: slot = 1 + the key's
 * position in ``keys``, 0 = empty. ``find`` replaces a binary search per n-gram window. */
static inline Py_ssize_t slot_of(int64_t key, Py_ssize_t mask) {
    return (Py_ssize_t)(((uint64_t)key * 0x9E3779B97F4A7C15ULL) >> 17) & mask;
}

static int table_buffers(PyObject *keys_obj, PyObject *slots_obj, Py_buffer *keys, Py_buffer *slots, int writable) {
    if (get_buffer(keys_obj, keys, 0, 8, "keys") < 0) return -1;
    if (get_buffer(slots_obj, slots, writable, 8, "slots") < 0) {
        PyBuffer_Release(keys);
        return -1;
    }
    Py_ssize_t n_slots = slots->len / 8;
    if (n_slots < 2 * (keys->len / 8) || n_slots == 0 || (n_slots & (n_slots - 1))) {
        PyErr_SetString(PyExc_ValueError, "slots: a power of two, at least twice the number of keys");
        PyBuffer_Release(keys);
        PyBuffer_Release(slots);
        return -1;
    }
    return 0;
}

static PyObject *hash_build(PyObject *self, PyObject *args) {
    PyObject *keys_obj, *slots_obj;
    if (!PyArg_ParseTuple(args, "OO", &keys_obj, &slots_obj)) return NULL;
    Py_buffer kb, sb;
    if (table_buffers(keys_obj, slots_obj, &kb, &sb, 1) < 0) return NULL;
    const int64_t *keys = kb.buf;
    int64_t *slots = sb.buf;
    Py_ssize_t n_keys = kb.len / 8, mask = sb.len / 8 - 1;
    memset(slots, 0, (size_t)sb.len);
    int duplicate = 0;
    for (Py_ssize_t i = 0; i < n_keys && !duplicate; i++) {
        Py_ssize_t at = slot_of(keys[i], mask);
        while (slots[at]) {
            if (keys[slots[at] - 1] == keys[i]) duplicate = 1;
            at = (at + 1) & mask;
        }
        slots[at] = i + 1;
    }
    PyBuffer_Release(&kb);
    PyBuffer_Release(&sb);
    if (duplicate) {
        PyErr_SetString(PyExc_ValueError, "hash_build: keys must be distinct");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *hash_find(PyObject *self, PyObject *args) {
    PyObject *keys_obj, *slots_obj, *queries_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &keys_obj, &slots_obj, &queries_obj, &out_obj)) return NULL;
    Py_buffer kb, sb, qb, ob;
    if (table_buffers(keys_obj, slots_obj, &kb, &sb, 0) < 0) return NULL;
    if (get_buffer(queries_obj, &qb, 0, 8, "queries") < 0) goto fail2;
    if (get_buffer(out_obj, &ob, 1, 8, "out") < 0) goto fail1;
    if (ob.len != qb.len) {
        PyErr_SetString(PyExc_ValueError, "hash_find: out must hold one value per query");
        PyBuffer_Release(&ob);
        goto fail1;
    }
    const int64_t *keys = kb.buf, *slots = sb.buf, *queries = qb.buf;
    int64_t *out = ob.buf;
    Py_ssize_t n_keys = kb.len / 8, mask = sb.len / 8 - 1, n = qb.len / 8;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !bad; i++) {
        int64_t query = queries[i], found = -1;
        Py_ssize_t at = slot_of(query, mask);
        for (Py_ssize_t probes = 0; slots[at] && probes <= mask; probes++) {
            int64_t slot = slots[at];
            if (slot < 1 || slot > n_keys) {
                bad = 1;
                break;
            }
            if (keys[slot - 1] == query) {
                found = slot - 1;
                break;
            }
            at = (at + 1) & mask;
        }
        out[i] = found;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ob);
    PyBuffer_Release(&qb);
    PyBuffer_Release(&kb);
    PyBuffer_Release(&sb);
    if (bad) {
        PyErr_SetString(PyExc_IndexError, "hash_find: a slot out of range");
        return NULL;
    }
    Py_RETURN_NONE;
fail1:
    PyBuffer_Release(&qb);
fail2:
    PyBuffer_Release(&kb);
    PyBuffer_Release(&sb);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scores", scores, METH_VARARGS,
     "scores(indptr, entries, table_indptr, table_indices, tf, idf, view_of_column, n_views, coef, out)\n"
     "Add each text's linear scores to out (coef: a tuple of n_columns x k blocks, whose outputs lie side\n"
     "by side in out); False (out unfinished) when a count is past the tf table."},
    {"hash_build", hash_build, METH_VARARGS,
     "hash_build(keys, slots)\nFill slots (a power of two, >= 2 len(keys), int64) with the hash table of distinct keys."},
    {"hash_find", hash_find, METH_VARARGS,
     "hash_find(keys, slots, queries, out)\nout[i] = the position of queries[i] in keys, or -1."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", "The batch prediction loop in C.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
