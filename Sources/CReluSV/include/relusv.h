/*
 * relusv.h -- the C interface of libReluSVKit: ReLU singular values and
 * Gaussian mean widths of sets and operators (Dittmer, King, Maass,
 * "Singular Values for ReLU Layers", IEEE TNNLS 2020).
 *
 * Conventions
 *   - Every function that can fail returns a relusv_status; RELUSV_OK is 0.
 *     On failure, relusv_last_error() describes the problem in one line.
 *     Output arguments are written only on success.
 *   - Matrices are row-major and described by a relusv_matrix; rows are
 *     points (data) or output units (a weight W is out x in, as in PyTorch).
 *     The library computes in the matrix's own precision without copying it.
 *   - Memory passed in stays owned by the caller. Objects the library
 *     creates (accumulators) are freed by their *_free function, which
 *     accepts NULL. Strings returned are owned by the library.
 *   - There is no global state apart from the thread-local error message;
 *     all functions may be called from several threads at once, on distinct
 *     objects.
 *   - Long computations call an optional progress callback on the calling
 *     thread with (done, total); a non-zero return cancels the computation,
 *     which then returns RELUSV_ERROR_CANCELLED having freed what it used.
 *   - Randomised routines take a seed; equal seeds give equal results,
 *     whatever the thread count or batch sizes.
 */
#ifndef RELUSV_H
#define RELUSV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ status */

typedef enum relusv_status {
    RELUSV_OK = 0,
    RELUSV_ERROR_NULL_POINTER = 1,     /* a required pointer argument is NULL */
    RELUSV_ERROR_INVALID_ARGUMENT = 2, /* a scalar argument is out of range */
    RELUSV_ERROR_SHAPE = 3,            /* a matrix shape or stride is invalid or inconsistent */
    RELUSV_ERROR_DTYPE = 4,            /* unknown or mismatched element type */
    RELUSV_ERROR_NONFINITE = 5,        /* input contains NaN or infinity, or a result overflowed */
    RELUSV_ERROR_EMPTY = 6,            /* a set with no points where at least one is needed */
    RELUSV_ERROR_SIZE_OVERFLOW = 7,    /* sizes whose product does not fit in memory */
    RELUSV_ERROR_MISMATCH = 8,         /* two objects that must agree do not */
    RELUSV_ERROR_CORRUPT_STATE = 9,    /* serialised state is malformed */
    RELUSV_ERROR_LAPACK = 10,          /* a LAPACK routine failed to converge */
    RELUSV_ERROR_CANCELLED = 11,       /* the progress callback asked to stop */
    RELUSV_ERROR_INTERNAL = 12,        /* a bug in the library; please report it */
    RELUSV_STATUS_COUNT = 13           /* number of status codes, not a status */
} relusv_status;

/* Symbolic name of a status ("RELUSV_ERROR_SHAPE"), or NULL if unknown. */
const char *relusv_status_name(int32_t status);
/* One-line description of a status, or "unknown status". */
const char *relusv_status_string(int32_t status);
/* Message of the last failure on the calling thread ("" if none); valid
 * until the next relusv call on this thread. */
const char *relusv_last_error(void);

/* Version as "MAJOR.MINOR.PATCH" and as MAJOR*10000 + MINOR*100 + PATCH. */
const char *relusv_version_string(void);
uint32_t relusv_version_number(void);

/* ---------------------------------------------------------------- matrices */

typedef enum relusv_dtype {
    RELUSV_FLOAT32 = 1,
    RELUSV_FLOAT64 = 2
} relusv_dtype;

/* A row-major matrix in caller memory: element (i, j) is at
 * data + (i * row_stride + j) * sizeof(element). row_stride is in elements
 * and must be >= cols; 0 means cols (contiguous rows). */
typedef struct relusv_matrix {
    const void *data;
    int32_t dtype;     /* a relusv_dtype */
    size_t rows;
    size_t cols;
    size_t row_stride;
} relusv_matrix;

/* Progress callback: done of total units finished; return non-zero to cancel. */
typedef int32_t (*relusv_progress_fn)(void *user_data, uint64_t done, uint64_t total);

/* ------------------------------------------------ Gaussian mean width (sets) */

/* A Monte-Carlo width estimate (MATH.md section 4). */
typedef struct relusv_width_result {
    double estimate;       /* trimmed mean of the per-direction widths */
    double std_error;      /* its standard error (Tukey-McLaughlin) */
    double mean;           /* plain mean of the per-direction widths */
    double mean_std_error; /* standard error of the plain mean */
    uint64_t samples;      /* number of directions S */
    uint64_t points;       /* number of points in the set */
} relusv_width_result;

/* Gaussian mean width of the rows of x:
 *   w(K) = E_g [max_i <g, x_i> - min_i <g, x_i>],  g ~ N(0, I_n),
 * from `samples` directions drawn with `seed`, aggregated by a mean trimmed
 * by `trim` in [0, 0.5) at each end (0.1 and samples = 100 as in the paper).
 * With `spherical` non-zero the directions are g / ||g|| (the spherical width
 * w_s = w / c_n). `sample_widths`, if not NULL, receives the `samples`
 * per-direction values. Extra memory is O(samples * block), not O(samples * rows). */
relusv_status relusv_gmw(const relusv_matrix *x, size_t samples, uint64_t seed, double trim,
                         int32_t spherical, double *sample_widths, relusv_width_result *result,
                         relusv_progress_fn progress, void *user_data);

/* Exact diameter max_{i,j} ||x_i - x_j|| (O(rows^2 cols) work, blocked GEMM). */
relusv_status relusv_diameter(const relusv_matrix *x, double *diameter,
                              relusv_progress_fn progress, void *user_data);

/* c_n = E||g|| = sqrt(2) Gamma((n+1)/2) / Gamma(n/2) for g ~ N(0, I_n), n >= 1. */
relusv_status relusv_gaussian_to_spherical_factor(uint64_t n, double *factor);

/* ------------------------------------------- streaming width accumulator */

/* Running per-direction extremes of <g_j, x> over all points added; adding
 * batches gives exactly the one-shot relusv_gmw result with the same seed. */
typedef struct relusv_gmw_accumulator relusv_gmw_accumulator;

typedef struct relusv_gmw_accumulator_info {
    uint64_t dimension;
    uint64_t samples;
    uint64_t seed;
    uint64_t points;   /* points added so far (including merged ones) */
    int32_t dtype;     /* precision of the products: a relusv_dtype */
} relusv_gmw_accumulator_info;

relusv_status relusv_gmw_accumulator_create(size_t dimension, size_t samples, uint64_t seed, int32_t dtype,
                                            relusv_gmw_accumulator **accumulator);
void relusv_gmw_accumulator_free(relusv_gmw_accumulator *accumulator);
relusv_status relusv_gmw_accumulator_info_get(const relusv_gmw_accumulator *accumulator,
                                              relusv_gmw_accumulator_info *info);
/* Adds the rows of x; x's dtype must equal the accumulator's. All or nothing. */
relusv_status relusv_gmw_accumulator_update(relusv_gmw_accumulator *accumulator, const relusv_matrix *x,
                                            relusv_progress_fn progress, void *user_data);
/* Adds the points of `other` (same dtype, dimension, samples and seed). */
relusv_status relusv_gmw_accumulator_merge(relusv_gmw_accumulator *accumulator,
                                           const relusv_gmw_accumulator *other);
/* Current estimate; see relusv_gmw for the arguments. */
relusv_status relusv_gmw_accumulator_estimate(const relusv_gmw_accumulator *accumulator, double trim,
                                              int32_t spherical, double *sample_widths,
                                              relusv_width_result *result);
/* Copies the running maxima and minima (`samples` doubles each). */
relusv_status relusv_gmw_accumulator_extremes(const relusv_gmw_accumulator *accumulator,
                                              double *maxima, double *minima);
/* Merges raw extremes (e.g. an all-reduce of other workers' extremes, MAX for
 * maxima and MIN for minima) together with the number of points they cover. */
relusv_status relusv_gmw_accumulator_merge_extremes(relusv_gmw_accumulator *accumulator,
                                                    const double *maxima, const double *minima,
                                                    uint64_t points);
/* Serialised state: size in bytes, export into a caller buffer of at least
 * that size, and import into a new accumulator (free it with *_free). */
relusv_status relusv_gmw_accumulator_state_size(const relusv_gmw_accumulator *accumulator, size_t *size);
relusv_status relusv_gmw_accumulator_export(const relusv_gmw_accumulator *accumulator, void *buffer,
                                            size_t capacity);
relusv_status relusv_gmw_accumulator_import(const void *buffer, size_t size,
                                            relusv_gmw_accumulator **accumulator);

#ifdef __cplusplus
}
#endif

#endif /* RELUSV_H */
