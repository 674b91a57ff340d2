/* libFuzzer target: the main C entry points on matrices and arguments made
 * from arbitrary bytes (any dtype code, shape, stride, NaN/Inf payloads,
 * samples, trim, ranks, handles of the wrong kind). Every call must return a
 * status from relusv.h with a message; none may crash, hang or leak.
 *
 * Layout of the input: 16 header bytes choose the arguments, the rest are the
 * matrix elements (reused cyclically). Sizes are kept small so that each run
 * takes milliseconds. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RELUSV_EXPERIMENTAL /* relusv_relu_fit_gradient */
#include "relusv.h"

typedef struct {
    const uint8_t *data;
    size_t size, at;
} reader;

static uint8_t byte(reader *r) { return r->size ? r->data[r->at++ % r->size] : 0; }

/* A matrix of up to 9 x 9 elements over a fresh buffer filled from the input. */
static relusv_matrix matrix(reader *r, void **buffer) {
    relusv_matrix m;
    uint8_t dtype = byte(r), rows = byte(r) % 10, cols = byte(r) % 10, pad = byte(r) % 3;
    m.dtype = dtype % 5 == 4 ? (int32_t)dtype : 1 + dtype % 2; /* sometimes an unknown dtype */
    m.rows = rows;
    m.cols = cols;
    m.row_stride = pad == 2 ? 0 : cols + pad;
    size_t stride = m.row_stride ? m.row_stride : cols;
    size_t elements = rows ? (rows - 1) * stride + cols : 0, bytes = elements * 8 + 8;
    uint8_t *p = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) p[i] = byte(r);
    *buffer = p;
    m.data = (byte(r) % 16 == 0) ? NULL : p;
    return m;
}

/* Extreme values of the scalar arguments and option fields: zero, subnormal,
 * tiny, huge, infinite, NaN and negative doubles; sizes at and beyond the
 * int32, int64 and uint64 limits. */
static const double extreme_doubles[] = {0.0,  5e-324, 2.2250738585072014e-308, 1e-300, 5e-21, 0.02, 0.5, 1.0,
                                         1e300, 1.7976931348623157e308, INFINITY, -INFINITY, NAN, -1.0};
static const uint64_t extreme_sizes[] = {0,           1,           2,          3,          7,
                                         0x7fffffffu, 0x80000000u, 0xffffffffu, INT64_MAX,  (uint64_t)INT64_MAX + 1,
                                         UINT64_MAX - 1, UINT64_MAX};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A double: mostly a small ordinary value, else one of the extremes. */
static double scalar(reader *r, double ordinary) {
    uint8_t b = byte(r);
    return b < 128 ? ordinary : extreme_doubles[b % COUNT(extreme_doubles)];
}

/* A size: mostly a small ordinary value, else one of the extremes. */
static uint64_t size_value(reader *r, uint64_t ordinary) {
    uint8_t b = byte(r);
    return b < 128 ? ordinary : extreme_sizes[b % COUNT(extreme_sizes)];
}

static void check(relusv_status s) {
    if (s < 0 || s >= RELUSV_STATUS_COUNT || s == RELUSV_ERROR_INTERNAL) abort();
    if (s != RELUSV_OK && relusv_last_error()[0] == 0) abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("RELUSV_MEMORY_LIMIT", "256M", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader r = {data, size, 0};
    void *bw, *bb, *bx, *bu, *bv;
    relusv_matrix w = matrix(&r, &bw), b = matrix(&r, &bb), x = matrix(&r, &bx);
    relusv_matrix u = matrix(&r, &bu), v = matrix(&r, &bv);
    size_t samples = byte(&r) % 64;
    double trim = (double)(byte(&r) % 70) / 100.0;
    uint64_t seed = byte(&r);
    relusv_width_result res;
    double widths[64], value, values[16];

    check(relusv_gmw(&x, samples, seed, trim, byte(&r) & 1, widths, &res, NULL, NULL));
    check(relusv_diameter(&x, &value, NULL, NULL));
    check(relusv_singular_values(&w, values));
    /* a tolerance over its extremes (negative, NaN, infinite give a status) and the Gram route's range */
    check(relusv_singular_values_tol(&w, scalar(&r, (byte(&r) & 1) ? 1e-7 : 0.0), values));
    double uu[81], ss[9], vt[81];
    check(relusv_truncated_svd(&w, byte(&r) % 11, uu, ss, vt));

    relusv_operator_width ow;
    int relu = byte(&r) & 1;
    check(relusv_operator_gmw(&w, relu && (byte(&r) & 1) ? &b : NULL, relu && (byte(&r) & 1) ? &x : NULL,
                              relu, (double)(byte(&r) % 120) / 100.0, samples, byte(&r) % 40, seed, trim, &ow,
                              NULL, NULL));

    relusv_relu_sv_options o;
    relusv_relu_sv_options_init(&o, sizeof o);
    o.max_steps = byte(&r) % 4;
    o.sphere_points = byte(&r) % 40;
    o.threads = 1;
    o.keep_factors = byte(&r) & 1;
    o.leaky_slope = (double)(byte(&r) % 120) / 100.0;
    /* Every numeric option over its extremes too (each must give a status, never a trap). */
    o.leaky_slope = scalar(&r, o.leaky_slope);
    o.time_budget = scalar(&r, 0.0);
    o.learning_rate = scalar(&r, o.learning_rate);
    o.seed = size_value(&r, byte(&r));
    o.fit_stride = size_value(&r, 0);
    o.batch_size = size_value(&r, o.batch_size);
    o.group_size = size_value(&r, 1 + byte(&r) % 3);
    o.fit_points = size_value(&r, o.fit_points);
    o.threads = size_value(&r, 1) > 2 ? 2 : o.threads; /* at most two threads: runs stay short */
    o.refine = (byte(&r) & 7) == 0 ? -1 : o.refine;
    if ((byte(&r) & 7) == 0) o.max_steps = UINT64_MAX;
    if ((byte(&r) & 15) == 0) o.sphere_points = size_value(&r, 0);
    if ((byte(&r) & 15) == 0) o.struct_size = size_value(&r, sizeof o);
    /* A shared SVD of W, or of another matrix (refused with a status), or none. */
    relusv_weight_svd *shared = NULL;
    if (byte(&r) & 1) {
        const relusv_matrix *of = (byte(&r) & 1) ? &w : &u;
        /* all pairs, or the vectors of the largest few (fewer than some k may need: refused with a status) */
        int route = byte(&r) % 3;
        check(route == 0   ? relusv_weight_svd_create(of, &shared)
              : route == 1 ? relusv_weight_svd_create_leading(of, size_value(&r, byte(&r) % 6), &shared)
                           : relusv_weight_svd_create_tol(of, size_value(&r, byte(&r) % 6), scalar(&r, 1e-7), &shared));
    }
    if (o.struct_size >= sizeof o) o.weight_svd = shared;
    if (shared) {
        double sv[16];
        size_t held;
        check(relusv_weight_svd_values(shared, sv, byte(&r) % 17));
        check(relusv_weight_svd_vectors((byte(&r) & 1) ? shared : NULL, (byte(&r) & 1) ? &held : NULL));
        double fu[16 * 16], fvt[16 * 16];  /* W is at most 9 x 9 here; a count beyond what is held: a status */
        size_t want = byte(&r) % 5;
        check(relusv_weight_svd_factors(shared, (byte(&r) & 1) ? fu : NULL, (byte(&r) & 1) ? fvt : NULL, want));
    }
    uint64_t ks[3] = {byte(&r) % 10, byte(&r) % 10, byte(&r) % 10};
    relusv_relu_spectrum *spectrum = NULL;
    relusv_status s = relusv_relu_singular_values(&w, (byte(&r) & 1) ? &b : NULL, (byte(&r) & 1) ? &x : NULL,
                                                  ks, byte(&r) % 4, &o, &spectrum, NULL, NULL);
    check(s);
    relusv_weight_svd_free(shared);
    if (s == RELUSV_OK) {
        relusv_relu_spectrum_info info;
        check(relusv_relu_spectrum_info_get(spectrum, &info));
        relusv_gmw_accumulator_info wrong;
        /* A spectrum passed as an accumulator is an error, never a misread. */
        if (relusv_gmw_accumulator_info_get((relusv_gmw_accumulator *)spectrum, &wrong) !=
            RELUSV_ERROR_INVALID_HANDLE)
            abort();
        size_t rank;
        check(relusv_relu_spectrum_factors(spectrum, byte(&r) % 4, &rank, NULL, NULL));
        relusv_relu_spectrum_free(spectrum);
        relusv_relu_spectrum_free(spectrum); /* a second free is ignored */
    }

    /* The convolution spectrum with its options over their extremes: first the check-only call
     * (values = NULL), then the computation when the values it implies fit the buffer. */
    relusv_conv_options co;
    relusv_conv_options_init(&co, sizeof co);
    co.groups = size_value(&r, 1 + byte(&r) % 3);
    co.stride = size_value(&r, 1 + byte(&r) % 2);
    co.top = size_value(&r, byte(&r) % 5);
    co.threads = size_value(&r, 1) > 2 ? 2 : 1;
    if ((byte(&r) & 15) == 0) co.struct_size = size_value(&r, sizeof co);
    size_t group_in = byte(&r) % 4, kh = 1 + byte(&r) % 3, kw = 1 + byte(&r) % 3;
    size_t height = byte(&r) % 9, width = byte(&r) % 9;
    static double conv_values[4096];
    s = relusv_conv_spectrum(&w, group_in, kh, kw, height, width, &co, NULL, NULL, NULL, NULL);
    check(s);
    if (s == RELUSV_OK && co.groups && co.stride && w.rows % co.groups == 0) {
        size_t per_group = w.rows / co.groups, inner = group_in * co.stride * co.stride;
        size_t total = (height / co.stride) * (width / co.stride) * co.groups * (per_group < inner ? per_group : inner);
        if (total <= 4096 && co.top <= 4096) check(relusv_conv_spectrum(&w, group_in, kh, kw, height, width, &co, conv_values, NULL,
                                                      NULL, NULL));
    }

    double loss, gu[81], gv[81];
    check(relusv_relu_fit_gradient(&w, (byte(&r) & 1) ? &b : NULL, &x, &u, &v, 0, &loss, gu, gv));

    relusv_gmw_accumulator *acc = NULL;
    s = relusv_gmw_accumulator_create(byte(&r) % 10, samples, seed, 1 + byte(&r) % 3, &acc);
    check(s);
    if (s == RELUSV_OK) {
        check(relusv_gmw_accumulator_update(acc, &x, NULL, NULL));
        check(relusv_gmw_accumulator_estimate(acc, trim, 0, widths, &res));
        relusv_gmw_accumulator_free(acc);
    }
    free(bw);
    free(bb);
    free(bx);
    free(bu);
    free(bv);
    return 0;
}
