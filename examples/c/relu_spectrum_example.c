/* A C program using the spectra part of relusv.h: singular values, the
 * certified ReLU singular-value curve of a small layer over given points,
 * its factors, and the error paths. Exits 0 when every check passes.
 *
 *   cc relu_spectrum_example.c -I<repo>/Sources/CReluSV/include -L<dir> -lReluSVKit -lm */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "relusv.h"


enum { M = 5, N = 4, POINTS = 64 };

static int cancel_at_once(void *user, uint64_t done, uint64_t total) {
    (void)user;
    (void)done;
    (void)total;
    return 1;
}

static double relu(double z) { return z > 0 ? z : 0; }

/* A deterministic pseudo-random value in [-1, 1). */
static double next_value(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    return ((*state >> 8) & 0xffff) / 32768.0 - 1.0;
}

int main(void) {
    /* W of rank 3 (its last row and column are zero), a bias, and points. */
    double w[M * N] = {0}, b[M], x[POINTS * N];
    unsigned state = 7;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) w[i * N + j] = next_value(&state) + (i == j ? 2.0 : 0.0);
    for (int i = 0; i < M; ++i) b[i] = 0.1 * next_value(&state);
    for (int i = 0; i < POINTS * N; ++i) x[i] = next_value(&state);
    relusv_matrix wm = {w, RELUSV_FLOAT64, M, N, 0};
    relusv_matrix bm = {b, RELUSV_FLOAT64, 1, M, 0};
    relusv_matrix xm = {x, RELUSV_FLOAT64, POINTS, N, 0};

    /* Singular values: three non-zero, the fourth zero; sum of squares = ||W||_F^2. */
    double sv[N], frob = 0, sum = 0;
    CHECK(relusv_singular_values(&wm, sv) == RELUSV_OK, "singular values: %s", relusv_last_error());
    for (int i = 0; i < M * N; ++i) frob += w[i] * w[i];
    for (int i = 0; i < N; ++i) sum += sv[i] * sv[i];
    CHECK(fabs(sum - frob) < 1e-12 * frob && sv[3] < 1e-12 * sv[0], "singular values wrong");
    /* Asked only to float32's accuracy: W's independent 3 x 3 block is well conditioned, so its values may
     * come from its Gram matrix, each within about 1.8e-12 sigma_0 of the SVD's; a negative tolerance is
     * refused. */
    double svt[N];
    CHECK(relusv_singular_values_tol(&wm, 1.2e-7, svt) == RELUSV_OK, "values to a tolerance: %s",
          relusv_last_error());
    for (int i = 0; i < N; ++i) CHECK(fabs(svt[i] - sv[i]) <= 2e-12 * sv[0], "value %d to a tolerance", i);
    CHECK(relusv_singular_values_tol(&wm, -1.0, svt) == RELUSV_ERROR_INVALID_ARGUMENT, "negative tolerance");

    /* The whole curve, with factors. */
    relusv_relu_sv_options options;
    relusv_relu_sv_options_init(&options, sizeof options);
    options.keep_factors = 1;
    options.max_steps = 60;
    options.threads = 1;
    relusv_relu_spectrum *spectrum = NULL;
    CHECK(relusv_relu_singular_values(&wm, &bm, &xm, NULL, 0, &options, &spectrum, NULL, NULL) == RELUSV_OK,
          "relu_singular_values: %s", relusv_last_error());
    relusv_relu_spectrum_info info;
    CHECK(relusv_relu_spectrum_info_get(spectrum, &info) == RELUSV_OK && info.count == N, "info");
    relusv_relu_sv_entry entries[N];
    CHECK(relusv_relu_spectrum_entries(spectrum, entries) == RELUSV_OK, "entries");

    /* k = 0 is exact: max_x ||ReLU(Wx + b) - ReLU(b)||. */
    double s0 = 0;
    for (int p = 0; p < POINTS; ++p) {
        double e = 0;
        for (int i = 0; i < M; ++i) {
            double z = b[i];
            for (int j = 0; j < N; ++j) z += w[i * N + j] * x[p * N + j];
            double d = relu(z) - relu(b[i]);
            e += d * d;
        }
        if (sqrt(e) > s0) s0 = sqrt(e);
    }
    CHECK(fabs(entries[0].bound - s0) <= 1e-12 * s0, "s_0 = %.17g, expected %.17g", entries[0].bound, s0);
    for (int k = 0; k < N; ++k) {
        printf("k = %d: sigma %.4f  t_k %.4f  bound %.4f  (%s)\n", k, entries[k].sigma, entries[k].truncation_bound,
               entries[k].bound, relusv_bound_source_name(entries[k].source));
        CHECK(entries[k].bound <= entries[k].truncation_bound * (1 + 1e-12), "bound above t_k at k = %d", k);
        CHECK(k == 0 || entries[k].bound <= entries[k - 1].bound, "curve increases at k = %d", k);
    }
    /* k = rank W: the evaluated error of a rank-3 matrix equal to W up to rounding
     * (exactly 0 only when the evaluation gives 0, then with source "zero"). */
    CHECK(entries[3].bound <= 1e-13 * s0, "k = rank W must give a rounding-level bound, got %.3g", entries[3].bound);
    CHECK((entries[3].source == RELUSV_SOURCE_ZERO) == (entries[3].bound == 0.0), "source zero iff the bound is 0");

    /* Factors of k = 2: their exact error is the reported bound. */
    size_t rank = 0;
    CHECK(relusv_relu_spectrum_factors(spectrum, 2, &rank, NULL, NULL) == RELUSV_OK && rank == 2, "rank");
    double u[M * 2], v[2 * N], worst = 0;
    CHECK(relusv_relu_spectrum_factors(spectrum, 2, &rank, u, v) == RELUSV_OK, "factors");
    for (int p = 0; p < POINTS; ++p) {
        double e = 0;
        for (int i = 0; i < M; ++i) {
            double z = b[i], l = b[i];
            for (int j = 0; j < N; ++j) {
                z += w[i * N + j] * x[p * N + j];
                l += (u[i * 2] * v[j] + u[i * 2 + 1] * v[N + j]) * x[p * N + j];
            }
            e += (relu(z) - relu(l)) * (relu(z) - relu(l));
        }
        if (sqrt(e) > worst) worst = sqrt(e);
    }
    CHECK(fabs(worst - entries[2].bound) <= 1e-9 * (1 + worst), "factors give %.17g, bound %.17g", worst,
          entries[2].bound);
    relusv_relu_spectrum_free(spectrum);
    relusv_relu_spectrum_free(NULL);

    /* One SVD of W shared by the curves over two sets of points: the same values as alone. */
    relusv_weight_svd *shared = NULL;
    CHECK(relusv_weight_svd_create(&wm, &shared) == RELUSV_OK, "weight svd: %s", relusv_last_error());
    double shared_sv[N];
    CHECK(relusv_weight_svd_values(shared, shared_sv, N) == RELUSV_OK && fabs(shared_sv[0] - sv[0]) <= 1e-14 * sv[0],
          "shared values");
    for (int half = 0; half < 2; ++half) {
        relusv_matrix part = {x + half * (POINTS / 2) * N, RELUSV_FLOAT64, POINTS / 2, N, 0};
        relusv_relu_spectrum *alone = NULL, *with = NULL;
        options.keep_factors = 0;
        options.weight_svd = NULL;
        CHECK(relusv_relu_singular_values(&wm, &bm, &part, NULL, 0, &options, &alone, NULL, NULL) == RELUSV_OK,
              "alone: %s", relusv_last_error());
        options.weight_svd = shared;
        CHECK(relusv_relu_singular_values(&wm, &bm, &part, NULL, 0, &options, &with, NULL, NULL) == RELUSV_OK,
              "shared: %s", relusv_last_error());
        relusv_relu_sv_entry a[N], c[N];
        CHECK(relusv_relu_spectrum_entries(alone, a) == RELUSV_OK && relusv_relu_spectrum_entries(with, c) == RELUSV_OK,
              "entries");
        for (int k = 0; k < N; ++k)
            CHECK(a[k].bound == c[k].bound && a[k].truncation_bound == c[k].truncation_bound, "shared SVD at k = %d", k);
        relusv_relu_spectrum_free(alone);
        relusv_relu_spectrum_free(with);
    }
    /* The vectors of the 2 largest values only: a curve up to k = 2 is served (its bounds are the exact
     * errors of its factors, here equal to those with all pairs to rounding); k = 3 is refused. */
    relusv_weight_svd *leading = NULL;
    size_t held = 0;
    CHECK(relusv_weight_svd_create_leading(&wm, 2, &leading) == RELUSV_OK &&
              relusv_weight_svd_vectors(leading, &held) == RELUSV_OK && held == 2,
          "leading svd: %s", relusv_last_error());
    {
        /* Its factors read back: W v_j = s_j u_j for the pairs held. */
        double lu[M * 2], lvt[2 * N], ls[N];
        CHECK(relusv_weight_svd_factors(leading, lu, lvt, 2) == RELUSV_OK &&
                  relusv_weight_svd_values(leading, ls, N) == RELUSV_OK,
              "leading factors: %s", relusv_last_error());
        for (int j = 0; j < 2; ++j)
            for (int i = 0; i < M; ++i) {
                double wv = 0;
                for (int c = 0; c < N; ++c) wv += w[i * N + c] * lvt[j * N + c];
                CHECK(fabs(wv - ls[j] * lu[i * 2 + j]) <= 1e-12 * ls[0], "W v_%d = s_%d u_%d", j, j, j);
            }
        CHECK(relusv_weight_svd_factors(leading, lu, NULL, 3) == RELUSV_ERROR_INVALID_ARGUMENT, "3 pairs of 2 read");
    }
    {
        uint64_t few[2] = {0, 2}, more[1] = {3};
        relusv_relu_spectrum *alone = NULL, *with = NULL, *beyond = NULL;
        options.weight_svd = NULL;
        CHECK(relusv_relu_singular_values(&wm, &bm, &xm, few, 2, &options, &alone, NULL, NULL) == RELUSV_OK,
              "alone: %s", relusv_last_error());
        options.weight_svd = leading;
        CHECK(relusv_relu_singular_values(&wm, &bm, &xm, few, 2, &options, &with, NULL, NULL) == RELUSV_OK,
              "leading: %s", relusv_last_error());
        relusv_relu_sv_entry a[2], c[2];
        CHECK(relusv_relu_spectrum_entries(alone, a) == RELUSV_OK && relusv_relu_spectrum_entries(with, c) == RELUSV_OK,
              "entries");
        for (int k = 0; k < 2; ++k)
            CHECK(fabs(a[k].truncation_bound - c[k].truncation_bound) <= 1e-9 * (1 + a[k].truncation_bound),
                  "leading SVD's t_k at k = %d", (int)few[k]);
        CHECK(relusv_relu_singular_values(&wm, &bm, &xm, more, 1, &options, &beyond, NULL, NULL) ==
                  RELUSV_ERROR_INVALID_ARGUMENT,
              "k = 3 with 2 pairs accepted");
        printf("leading SVD, k = 3 -> %s\n", relusv_last_error());
        relusv_relu_spectrum_free(alone);
        relusv_relu_spectrum_free(with);
    }
    relusv_weight_svd_free(leading);
    options.weight_svd = shared;
    relusv_matrix other = {x, RELUSV_FLOAT64, M, N, 0}; /* another M x N matrix: its SVD is refused */
    relusv_relu_spectrum *refused = NULL;
    CHECK(relusv_relu_singular_values(&other, &bm, &xm, NULL, 0, &options, &refused, NULL, NULL) ==
              RELUSV_ERROR_INVALID_ARGUMENT,
          "another W's SVD accepted");
    printf("shared SVD of another W -> %s\n", relusv_last_error());
    relusv_weight_svd_free(shared);
    options.weight_svd = NULL;

    /* Error paths. */
    relusv_relu_spectrum *none = NULL;
    CHECK(relusv_relu_singular_values(NULL, NULL, &xm, NULL, 0, NULL, &none, NULL, NULL) ==
              RELUSV_ERROR_NULL_POINTER && none == NULL, "NULL w");
    relusv_matrix short_bias = {b, RELUSV_FLOAT64, 1, M - 1, 0};
    CHECK(relusv_relu_singular_values(&wm, &short_bias, &xm, NULL, 0, NULL, &none, NULL, NULL) ==
              RELUSV_ERROR_SHAPE, "bias shape");
    printf("bias of length %d -> %s: %s\n", M - 1, relusv_status_name(RELUSV_ERROR_SHAPE), relusv_last_error());
    relusv_matrix narrow_x = {x, RELUSV_FLOAT64, POINTS, N - 1, 0};
    CHECK(relusv_relu_singular_values(&wm, NULL, &narrow_x, NULL, 0, NULL, &none, NULL, NULL) ==
              RELUSV_ERROR_SHAPE, "x shape");
    uint64_t bad_k[1] = {N};
    CHECK(relusv_relu_singular_values(&wm, NULL, &xm, bad_k, 1, NULL, &none, NULL, NULL) != RELUSV_OK,
          "k out of range accepted");
    CHECK(relusv_relu_singular_values(&wm, &bm, &xm, NULL, 0, NULL, &none, cancel_at_once, NULL) ==
              RELUSV_ERROR_CANCELLED && none == NULL, "cancel");
    x[5] = NAN;
    CHECK(relusv_relu_singular_values(&wm, &bm, &xm, NULL, 0, NULL, &none, NULL, NULL) != RELUSV_OK, "NaN");
    printf("NaN in x -> %s\n", relusv_last_error());
    CHECK(relusv_singular_values(&wm, NULL) == RELUSV_ERROR_NULL_POINTER, "NULL values");
    printf("C spectra example: all checks passed\n");
    return 0;
}
