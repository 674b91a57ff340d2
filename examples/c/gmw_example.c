/* A C program using libReluSVKit through relusv.h: the Gaussian mean width of
 * the vertices of the cube {-1, 1}^n, whose exact value is 2 n sqrt(2 / pi),
 * a streaming accumulator fed in batches, and the library's error reporting.
 *
 *   cc gmw_example.c -I<repo>/Sources/CReluSV/include -L<dir> -lReluSVKit -lm
 *
 * Exits 0 when every check passes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "relusv.h"


static int count_calls(void *user, uint64_t done, uint64_t total) {
    (void)done;
    (void)total;
    ++*(int *)user;
    return 0;
}

static int cancel_at_once(void *user, uint64_t done, uint64_t total) {
    (void)user;
    (void)done;
    (void)total;
    return 1;
}

int main(void) {
    /* The library loaded must be compatible with the header compiled against (relusv.h, "ABI stability"). */
    uint32_t version = relusv_version_number();
    CHECK(version / 10000 == RELUSV_VERSION_MAJOR && version >= RELUSV_VERSION_NUMBER,
          "library %s is older than relusv.h %s", relusv_version_string(), RELUSV_VERSION_STRING);

    enum { N = 6, POINTS = 1 << N, SAMPLES = 20000 };
    double *cube = malloc(sizeof(double) * POINTS * N);
    for (int i = 0; i < POINTS; ++i)
        for (int j = 0; j < N; ++j) cube[i * N + j] = (i >> j & 1) ? 1.0 : -1.0;
    relusv_matrix x = {cube, RELUSV_FLOAT64, POINTS, N, 0};

    /* One-shot estimate against the exact value; plain mean (trim 0) is unbiased. */
    relusv_width_result r;
    int calls = 0;
    relusv_status s = relusv_gmw(&x, SAMPLES, 42, 0.0, 0, NULL, &r, count_calls, &calls);
    CHECK(s == RELUSV_OK, "relusv_gmw: %s", relusv_last_error());
    double exact = 2.0 * N * sqrt(2.0 / acos(-1.0));
    printf("relusv %s: w(cube %d) = %.4f +- %.4f (exact %.4f)\n", relusv_version_string(), N, r.estimate,
           r.std_error, exact);
    CHECK(fabs(r.estimate - exact) < 4 * r.std_error, "estimate %.4f too far from %.4f", r.estimate, exact);
    CHECK(calls > 0, "progress callback never called");

    /* Streaming in two batches equals the one-shot result. */
    relusv_gmw_accumulator *acc = NULL;
    CHECK(relusv_gmw_accumulator_create(N, SAMPLES, 42, RELUSV_FLOAT64, &acc) == RELUSV_OK, "create: %s",
          relusv_last_error());
    relusv_matrix first = {cube, RELUSV_FLOAT64, 10, N, 0};
    relusv_matrix rest = {cube + 10 * N, RELUSV_FLOAT64, POINTS - 10, N, 0};
    CHECK(relusv_gmw_accumulator_update(acc, &first, NULL, NULL) == RELUSV_OK, "update");
    CHECK(relusv_gmw_accumulator_update(acc, &rest, NULL, NULL) == RELUSV_OK, "update");
    relusv_width_result streamed;
    CHECK(relusv_gmw_accumulator_estimate(acc, 0.0, 0, NULL, &streamed) == RELUSV_OK, "estimate");
    /* Equal up to the rounding of single products (BLAS rounds by call shape). */
    CHECK(fabs(streamed.estimate - r.estimate) <= 1e-12 * r.estimate, "streamed %.17g != one-shot %.17g",
          streamed.estimate, r.estimate);

    /* Export and import round trip. */
    size_t size = 0;
    CHECK(relusv_gmw_accumulator_state_size(acc, &size) == RELUSV_OK, "state size");
    unsigned char *state = malloc(size);
    CHECK(relusv_gmw_accumulator_export(acc, state, size) == RELUSV_OK, "export");
    relusv_gmw_accumulator *copy = NULL;
    CHECK(relusv_gmw_accumulator_import(state, size, &copy) == RELUSV_OK, "import: %s", relusv_last_error());
    relusv_width_result restored;
    CHECK(relusv_gmw_accumulator_estimate(copy, 0.0, 0, NULL, &restored) == RELUSV_OK, "estimate");
    CHECK(restored.estimate == streamed.estimate, "restored estimate differs");
    state[0] ^= 0xff; /* corrupt the magic number */
    relusv_gmw_accumulator *bad = NULL;
    CHECK(relusv_gmw_accumulator_import(state, size, &bad) == RELUSV_ERROR_CORRUPT_STATE && bad == NULL,
          "corrupt state accepted");
    free(state);

    /* Error paths: each returns its status and a message; nothing crashes. */
    CHECK(relusv_gmw(NULL, 100, 0, 0.1, 0, NULL, &r, NULL, NULL) == RELUSV_ERROR_NULL_POINTER, "NULL x");
    printf("NULL x -> %s: %s\n", relusv_status_name(RELUSV_ERROR_NULL_POINTER), relusv_last_error());
    CHECK(relusv_gmw(&x, 100, 0, 0.1, 0, NULL, NULL, NULL, NULL) == RELUSV_ERROR_NULL_POINTER, "NULL result");
    CHECK(relusv_gmw(&x, 0, 0, 0.1, 0, NULL, &r, NULL, NULL) == RELUSV_ERROR_INVALID_ARGUMENT, "0 samples");
    CHECK(relusv_gmw(&x, 100, 0, 0.5, 0, NULL, &r, NULL, NULL) == RELUSV_ERROR_INVALID_ARGUMENT, "trim 0.5");
    relusv_matrix empty = {cube, RELUSV_FLOAT64, 0, N, 0};
    CHECK(relusv_gmw(&empty, 100, 0, 0.1, 0, NULL, &r, NULL, NULL) == RELUSV_ERROR_EMPTY, "empty set");
    relusv_matrix narrow = {cube, RELUSV_FLOAT64, POINTS, N, N - 1};
    CHECK(relusv_gmw(&narrow, 100, 0, 0.1, 0, NULL, &r, NULL, NULL) == RELUSV_ERROR_SHAPE, "short stride");
    relusv_matrix wrong_type = {cube, 7, POINTS, N, 0};
    CHECK(relusv_gmw(&wrong_type, 100, 0, 0.1, 0, NULL, &r, NULL, NULL) == RELUSV_ERROR_DTYPE, "dtype");
    relusv_matrix huge = {cube, RELUSV_FLOAT64, SIZE_MAX / 2, SIZE_MAX / 4, 0};
    CHECK(relusv_gmw(&huge, 100, 0, 0.1, 0, NULL, &r, NULL, NULL) == RELUSV_ERROR_SIZE_OVERFLOW, "overflow");
    cube[3 * N + 2] = NAN;
    CHECK(relusv_gmw(&x, 100, 0, 0.1, 0, NULL, &r, NULL, NULL) == RELUSV_ERROR_NONFINITE, "NaN");
    printf("NaN -> %s: %s\n", relusv_status_name(RELUSV_ERROR_NONFINITE), relusv_last_error());
    CHECK(strstr(relusv_last_error(), "row 3, column 2") != NULL, "NaN position not named");
    cube[3 * N + 2] = 1.0;
    CHECK(relusv_gmw(&x, 100, 0, 0.1, 0, NULL, &r, cancel_at_once, NULL) == RELUSV_ERROR_CANCELLED, "cancel");
    relusv_matrix single = {cube, RELUSV_FLOAT32, POINTS, N, 0};
    CHECK(relusv_gmw_accumulator_update(acc, &single, NULL, NULL) == RELUSV_ERROR_DTYPE, "dtype mismatch");
    relusv_gmw_accumulator *other = NULL;
    CHECK(relusv_gmw_accumulator_create(N, SAMPLES, 7, RELUSV_FLOAT64, &other) == RELUSV_OK, "create");
    CHECK(relusv_gmw_accumulator_merge(acc, other) == RELUSV_ERROR_MISMATCH, "seed mismatch merged");
    CHECK(relusv_status_name(RELUSV_STATUS_COUNT) == NULL, "status table has no end");

    relusv_gmw_accumulator_free(other);
    relusv_gmw_accumulator_free(copy);
    relusv_gmw_accumulator_free(acc);
    relusv_gmw_accumulator_free(NULL);
    free(cube);
    printf("C example: all checks passed\n");
    return 0;
}
