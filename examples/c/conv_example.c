/* A C program using libReluSVKit through relusv.h: the exact singular values
 * of circular convolutions (MATH.md section 9), plain, grouped, depthwise and
 * strided, checked against closed forms:
 *   - the sum of the squared singular values is the operator's squared
 *     Frobenius norm, (height / s)(width / s) ||K||_F^2;
 *   - a depthwise 1 x 1 convolution with weights c_g has the values |c_g|,
 *     each height x width times;
 *   - entries near the largest double give the scaled values or
 *     RELUSV_ERROR_NONFINITE, never NaN.
 *
 *   cc conv_example.c -I<repo>/Sources/CReluSV/include -L<dir> -lReluSVKit -lm
 *
 * Exits 0 when every check passes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "relusv.h"

enum { C_OUT = 6, C_IN = 4, KH = 3, KW = 3, H = 6, W = 8 };

/* sum of squares of n values, each divided by `unit` first */
static double sum_squares(const double *v, size_t n, double unit) {
    double total = 0;
    for (size_t i = 0; i < n; ++i) total += (v[i] / unit) * (v[i] / unit);
    return total;
}

/* The spectrum of kernel (C_OUT x group_in KH KW, row-major) with `groups` and `stride`,
 * checked: count, descending, non-negative, Frobenius identity. Returns 0 when it holds. */
static int check_spectrum(const double *kernel, size_t group_in, uint64_t groups, uint64_t stride, double unit) {
    relusv_matrix k = {(void *)kernel, RELUSV_FLOAT64, C_OUT, group_in * KH * KW, 0};
    relusv_conv_options options;
    relusv_conv_options_init(&options, sizeof options);
    options.groups = groups;
    options.stride = stride;
    options.threads = 2;
    size_t count = (H / stride) * (W / stride) * groups;
    size_t block_in = group_in * stride * stride, block_out = C_OUT / groups;
    count *= block_out < block_in ? block_out : block_in;

    size_t scratch = 0; /* values = NULL: a check of the arguments and the memory only */
    CHECK(relusv_conv_spectrum(&k, group_in, KH, KW, H, W, &options, NULL, &scratch, NULL, NULL) == RELUSV_OK,
          "check: %s", relusv_last_error());
    CHECK(scratch > 0, "no scratch memory reported");
    double *values = malloc(sizeof(double) * count);
    CHECK(relusv_conv_spectrum(&k, group_in, KH, KW, H, W, &options, values, NULL, NULL, NULL) == RELUSV_OK,
          "spectrum: %s", relusv_last_error());
    for (size_t i = 0; i < count; ++i) {
        CHECK(values[i] >= 0 && (i == 0 || values[i] <= values[i - 1]), "value %zu = %g out of order", i, values[i]);
    }
    double expected = (double)(H / stride) * (W / stride) * sum_squares(kernel, C_OUT * group_in * KH * KW, unit);
    double got = sum_squares(values, count, unit);
    printf("groups %llu stride %llu: %zu values, top %.6g, sum of squares %.10g (expected %.10g), %zu bytes\n",
           (unsigned long long)groups, (unsigned long long)stride, count, values[0], got, expected, scratch);
    CHECK(fabs(got - expected) <= 1e-12 * expected, "Frobenius identity fails: %.17g vs %.17g", got, expected);
    free(values);
    return 0;
}

int main(void) {
    uint32_t version = relusv_version_number();
    CHECK(version / 10000 == RELUSV_VERSION_MAJOR && version >= RELUSV_VERSION_NUMBER,
          "library %s is older than relusv.h %s", relusv_version_string(), RELUSV_VERSION_STRING);

    double kernel[C_OUT * C_IN * KH * KW];
    srand(7);
    for (size_t i = 0; i < sizeof kernel / sizeof kernel[0]; ++i) kernel[i] = rand() / (double)RAND_MAX - 0.5;

    CHECK(check_spectrum(kernel, C_IN, 1, 1, 1.0) == 0, "plain");
    CHECK(check_spectrum(kernel, C_IN / 2, 2, 1, 1.0) == 0, "two groups");
    CHECK(check_spectrum(kernel, C_IN, 1, 2, 1.0) == 0, "stride 2");
    CHECK(check_spectrum(kernel, 1, C_OUT, 2, 1.0) == 0, "depthwise, stride 2");

    /* Depthwise 1 x 1: the values are |c_g|, each H W times. */
    double c[C_OUT] = {0.5, -2.0, 1.5, 0.25, -1.0, 3.0};
    relusv_matrix dk = {c, RELUSV_FLOAT64, C_OUT, 1, 0};
    relusv_conv_options options;
    relusv_conv_options_init(&options, sizeof options);
    options.groups = C_OUT;
    options.top = H * W + 1; /* all of 3.0's and the first 2.0 */
    double top[H * W + 1];
    CHECK(relusv_conv_spectrum(&dk, 1, 1, 1, H, W, &options, top, NULL, NULL, NULL) == RELUSV_OK, "depthwise: %s",
          relusv_last_error());
    for (int i = 0; i < H * W; ++i) CHECK(top[i] == 3.0, "depthwise value %d = %g, expected 3", i, top[i]);
    CHECK(top[H * W] == 2.0, "depthwise value %d = %g, expected 2", H * W, top[H * W]);

    /* The old entry (no groups, stride 1) agrees with the new one. */
    relusv_matrix k = {kernel, RELUSV_FLOAT64, C_OUT, C_IN * KH * KW, 0};
    double first = 0, again = 0;
    CHECK(relusv_conv_singular_values(&k, C_IN, KH, KW, H, W, 1, 0, &first, NULL, NULL) == RELUSV_OK, "old entry");
    relusv_conv_options_init(&options, sizeof options);
    options.top = 1;
    CHECK(relusv_conv_spectrum(&k, C_IN, KH, KW, H, W, &options, &again, NULL, NULL, NULL) == RELUSV_OK, "new");
    CHECK(first == again, "entries disagree: %.17g vs %.17g", first, again);

    /* A float32 kernel is computed in float32: its top value agrees to float32 accuracy. */
    float kernel32[C_OUT * C_IN * KH * KW];
    for (size_t i = 0; i < sizeof kernel32 / sizeof kernel32[0]; ++i) kernel32[i] = (float)kernel[i];
    relusv_matrix k32 = {kernel32, RELUSV_FLOAT32, C_OUT, C_IN * KH * KW, 0};
    CHECK(relusv_conv_spectrum(&k32, C_IN, KH, KW, H, W, &options, &again, NULL, NULL, NULL) == RELUSV_OK,
          "float32: %s", relusv_last_error());
    CHECK(fabs(again - first) <= 1e-5 * first, "float32 top %.9g vs float64 %.9g", again, first);

    /* Clear errors: groups not dividing C_out, stride not dividing the input. */
    options.top = 0;
    options.groups = 4;
    CHECK(relusv_conv_spectrum(&k, C_IN, KH, KW, H, W, &options, NULL, NULL, NULL, NULL) ==
              RELUSV_ERROR_INVALID_ARGUMENT, "groups = 4 accepted");
    printf("refused: %s\n", relusv_last_error());
    options.groups = 1;
    options.stride = 5;
    CHECK(relusv_conv_spectrum(&k, C_IN, KH, KW, H, W, &options, NULL, NULL, NULL, NULL) ==
              RELUSV_ERROR_INVALID_ARGUMENT, "stride = 5 accepted");
    printf("refused: %s\n", relusv_last_error());

    /* Near the largest double: 1e300 entries are scaled (values finite, identity holds in units of 1e300);
     * 1e308 entries give values beyond the double range, so NONFINITE. */
    double big[C_OUT * C_IN * KH * KW];
    for (size_t i = 0; i < sizeof big / sizeof big[0]; ++i) big[i] = kernel[i] * 1e300;
    CHECK(check_spectrum(big, C_IN, 1, 1, 1e300) == 0, "entries near 1e300");
    for (size_t i = 0; i < sizeof big / sizeof big[0]; ++i) big[i] = kernel[i] < 0 ? -1.7e308 : 1.7e308;
    relusv_matrix bk = {big, RELUSV_FLOAT64, C_OUT, C_IN * KH * KW, 0};
    double v[1];
    relusv_conv_options_init(&options, sizeof options);
    options.top = 1;
    CHECK(relusv_conv_spectrum(&bk, C_IN, KH, KW, H, W, &options, v, NULL, NULL, NULL) == RELUSV_ERROR_NONFINITE,
          "an overflowing spectrum was not refused");
    printf("refused: %s\n", relusv_last_error());
    return 0;
}
