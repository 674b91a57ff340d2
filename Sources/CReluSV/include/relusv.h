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
 *     creates (accumulators, spectra) are freed by their *_free function,
 *     which accepts NULL. Strings returned are owned by the library.
 *   - Handles (relusv_gmw_accumulator *, relusv_relu_spectrum *) are opaque
 *     values, not addresses: the library keeps a table of live handles. A
 *     call looks its handle up and holds the object until it returns, so a
 *     *_free from another thread while calls run is safe: the object is freed
 *     when the last of them ends, and calls made after the free fail. A freed,
 *     unknown or other-kind handle gives RELUSV_ERROR_INVALID_HANDLE, and a
 *     *_free of such a handle does nothing. Never dereference a handle.
 *   - Threads: all functions may be called from several threads at once. A
 *     GMW accumulator may be shared: its calls are serialised where they
 *     touch its state, and concurrent updates lose no points. A spectrum is
 *     read-only. Process-wide state: the handle table, the memory limit and
 *     the cancellation generation (below), each behind its own lock, and the
 *     thread-local error message.
 *   - Memory: every buffer whose size depends on the input is checked against
 *     a limit before it is allocated (RELUSV_ERROR_OUT_OF_MEMORY otherwise):
 *     relusv_set_memory_limit, else the environment variable
 *     RELUSV_MEMORY_LIMIT (bytes, or with a suffix K, M, G, T), else the
 *     physical memory; lowered to the free address space under RLIMIT_AS.
 *   - Long computations call an optional progress callback on the calling
 *     thread with (done, total); a non-zero return cancels the computation,
 *     which then returns RELUSV_ERROR_CANCELLED having freed what it used.
 *     relusv_cancel_all() cancels every call running at that moment, on any
 *     thread, with or without a callback. Checks come between blocks of
 *     work; a single LAPACK or BLAS call (e.g. the SVD of a large W) cannot
 *     be interrupted and finishes first.
 *   - Randomised routines take a seed; equal seeds give equal results.
 *     Reproducibility across threads (on one machine and library build):
 *     relusv_relu_singular_values runs wholly with OpenBLAS at one thread,
 *     so its bounds (the exact k = 0 value included), t_k, sigma_k and
 *     factors are bit-identical whatever OPENBLAS_NUM_THREADS, the `threads`
 *     option and calls running concurrently; so are relusv_singular_values
 *     and relusv_numerical_rank (also at one thread). The widths (relusv_gmw, the
 *     accumulator, relusv_operator_gmw) use OpenBLAS's thread count: each
 *     product <g_j, x_i> may round differently with another thread count,
 *     another batch shape or concurrent calls, by at most n u ||g_j|| ||x_i||
 *     (n the dimension, u the unit roundoff of the precision: 2^-53 for
 *     float64, 2^-24 for float32), so a per-direction width by at most twice
 *     the largest of these. Likewise the other results of those entries,
 *     relusv_diameter and relusv_truncated_svd may
 *     differ by the rounding of their BLAS and LAPACK products (the diameter
 *     is always the exact distance of the pair its products rank first).
 *
 * ABI stability (from version 0.1.0; the discipline zstd keeps)
 *   - The stable section (everything inside the RELUSV_H guard) is the ABI:
 *     a program built against relusv X.Y runs with every library X.Z,
 *     Z >= Y (soname libReluSVKit.so.X). An incompatible change increments
 *     X and the soname.
 *   - Rule: every addition to the stable section (a function, a field
 *     appended to an option struct, a status code, an enum value, a new
 *     serialised format written) comes with a minor version bump (X.Y+1.0),
 *     recorded under "Versions" below; changes that add nothing (fixes) bump
 *     the patch only. A program that needs an addition checks
 *     relusv_version_number() >= the version that added it.
 *   - Within a major version, functions keep their signatures, status codes
 *     and enum values keep their numbers, and structs the library writes
 *     (results, *_info, *_entry) keep their layout. Treat an unknown status
 *     as an error (relusv_status_name returns NULL for it).
 *   - Option structs (read by the library) begin with `size_t struct_size`
 *     and grow only at their end. Their *_init function takes the caller's
 *     sizeof and writes the library's defaults into that many bytes (setting
 *     struct_size); the library reads struct_size bytes and takes its
 *     defaults for the fields beyond, so programs built against an older
 *     header keep working unchanged. A struct larger than the library knows
 *     (a program built against a newer header) is refused with
 *     RELUSV_ERROR_INVALID_ARGUMENT.
 *   - Fields marked "tuning knob (experimental)" keep their place in the
 *     layout and their range checks, but what they tune may change in any
 *     minor version (a later engine may ignore one and use its own choice).
 *   - The experimental section (after the RELUSV_H guard, declared only when
 *     RELUSV_EXPERIMENTAL is defined before relusv.h is included, as zstd's
 *     ZSTD_STATIC_LINKING_ONLY) may change or disappear in any version: a
 *     program using it should require relusv_version_number() to equal the
 *     RELUSV_VERSION_NUMBER it was built with.
 *   - The library exports only the relusv_* symbols declared here.
 *
 * Versions
 *   0.1.0  The first stable ABI (relusv_relu_sv_options up to batch_size;
 *          accumulator state format 1).
 *   0.2.0  relusv_relu_sv_options gains group_size and fit_points; the
 *          accumulator state is exported in format 2 (with a checksum;
 *          format 1 is still imported); relusv_relu_fit_gradient and the
 *          tuning knobs of relusv_relu_sv_options become experimental;
 *          grouped and strided convolutions are added: relusv_conv_spectrum
 *          and relusv_conv_options; the numerical-rank rule is exported:
 *          relusv_numerical_rank and relusv_rank_of_spectrum.
 *          Behaviour: ReLU bounds certified at every scale and bit-identical
 *          across thread counts; values beyond the range of their precision
 *          (singular values, the fit gradient) give RELUSV_ERROR_NONFINITE.
 *   0.3.0  relusv_set_extremes; a weight's SVD shared by several curves:
 *          relusv_weight_svd_create, _free, _values and the field
 *          weight_svd of relusv_relu_sv_options. Behaviour: the singular
 *          values and SVD of a matrix of independent blocks (a grouped
 *          convolution's kernel matrix, a diagonal) from its blocks'.
 *   0.4.0  relusv_weight_svd_create_leading, relusv_weight_svd_vectors and
 *          relusv_weight_svd_factors: a shared SVD with the vectors of the
 *          largest values only, and its factors read back.
 *   0.5.0  relusv_rank_of_spectrum_eps: the numerical-rank rule with any
 *          machine epsilon (weights stored in half precision).
 *   0.6.0  relusv_singular_values_tol and relusv_weight_svd_create_tol:
 *          values asked to an accuracy (relative to sigma_0), from the Gram
 *          matrix where it resolves them.
 */
#ifndef RELUSV_H
#define RELUSV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- version */

/* The version of this header, the one place the version is written (the
 * library, its soname and the Python package take it from here; every
 * addition bumps the minor version, see "ABI stability" above).
 * relusv_version_number() is the version of the library loaded at run time:
 * it must have the same MAJOR and be at least RELUSV_VERSION_NUMBER. */
#define RELUSV_VERSION_MAJOR 0
#define RELUSV_VERSION_MINOR 6
#define RELUSV_VERSION_PATCH 0
#define RELUSV_VERSION_NUMBER (RELUSV_VERSION_MAJOR * 10000 + RELUSV_VERSION_MINOR * 100 + RELUSV_VERSION_PATCH)
#define RELUSV_QUOTE_(x) #x
#define RELUSV_QUOTE(x) RELUSV_QUOTE_(x)
#define RELUSV_VERSION_STRING \
    RELUSV_QUOTE(RELUSV_VERSION_MAJOR) "." RELUSV_QUOTE(RELUSV_VERSION_MINOR) "." RELUSV_QUOTE(RELUSV_VERSION_PATCH)

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
    RELUSV_ERROR_CANCELLED = 11,       /* the progress callback or relusv_cancel_all asked to stop */
    RELUSV_ERROR_INTERNAL = 12,        /* a bug in the library; please report it */
    RELUSV_ERROR_OUT_OF_MEMORY = 13,   /* the input needs more memory than the limit allows
                                          (relusv_set_memory_limit); refused before allocating */
    RELUSV_ERROR_INVALID_HANDLE = 14,  /* a handle that is freed, unknown or of another kind */
    RELUSV_STATUS_COUNT = 15           /* number of status codes, not a status */
} relusv_status;

/* Symbolic name of a status ("RELUSV_ERROR_SHAPE"), or NULL if unknown. */
const char *relusv_status_name(int32_t status);
/* One-line description of a status, or "unknown status". */
const char *relusv_status_string(int32_t status);
/* Message of the last failure on the calling thread ("" if none); valid
 * until the next relusv call on this thread. */
const char *relusv_last_error(void);

/* The library's version as "MAJOR.MINOR.PATCH" (RELUSV_VERSION_STRING when it
 * was built) and as MAJOR*10000 + MINOR*100 + PATCH (RELUSV_VERSION_NUMBER). */
const char *relusv_version_string(void);
uint32_t relusv_version_number(void);

/* ------------------------------------------------- process-wide controls */

/* Sets the memory limit in bytes that input-sized buffers are checked
 * against; 0 restores the default (RELUSV_MEMORY_LIMIT, else physical memory). */
void relusv_set_memory_limit(size_t bytes);
/* The limit in effect now, in bytes (after the RLIMIT_AS headroom). */
size_t relusv_memory_limit(void);
/* Cancels every computation running now, on every thread: each returns
 * RELUSV_ERROR_CANCELLED at its next check. Calls started later run normally.
 * Safe to call from any thread (not from a signal handler: it takes a lock). */
void relusv_cancel_all(void);

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

/* Gaussian mean width of the rows of x (dimension x samples <= 2^28):
 *   w(K) = E_g [max_i <g, x_i> - min_i <g, x_i>],  g ~ N(0, I_n),
 * from `samples` directions drawn with `seed`, aggregated by a mean trimmed
 * by `trim` in [0, 0.5) at each end (0.1 and samples = 100 as in the paper).
 * With `spherical` non-zero the directions are g / ||g|| (the spherical width
 * w_s = w / c_n). `sample_widths`, if not NULL, receives the `samples`
 * per-direction values. Extra memory is samples x dimension directions plus
 * max(samples, 2^20) products per block, never O(samples * rows). */
relusv_status relusv_gmw(const relusv_matrix *x, size_t samples, uint64_t seed, double trim,
                         int32_t spherical, double *sample_widths, relusv_width_result *result,
                         relusv_progress_fn progress, void *user_data);

/* Exact diameter max_{i,j} ||x_i - x_j|| (O(rows^2 cols) work, blocked GEMM). */
relusv_status relusv_diameter(const relusv_matrix *x, double *diameter,
                              relusv_progress_fn progress, void *user_data);

/* Column-wise extremes of sets of rows of V (rows x columns, RELUSV_FLOAT64): the cost of a
 * set functional f(A) = reduce(max_A V, min_A V) evaluated on many sets, as
 * the permutation test of MATH.md section 11 does (V: the points' products
 * with the Gaussian directions for the GMW; per-point values for s_0).
 * `sets` holds `count` sets of `set_size` row indices (int64, set by set,
 * each in [0, rows), all checked before any is read); `hi` receives the
 * count x columns maxima hi[i][j] = max over set i of V[r][j], `lo` (may be
 * NULL) the minima. A NaN member makes its column's extremes NaN. One
 * thread; progress in sets. count = 0 does nothing; set_size = 0 with
 * count > 0 is RELUSV_ERROR_EMPTY. */
relusv_status relusv_set_extremes(const relusv_matrix *v, const int64_t *sets, size_t count, size_t set_size,
                                  double *hi, double *lo, relusv_progress_fn progress, void *user_data);

/* c_n = E||g|| = sqrt(2) Gamma((n+1)/2) / Gamma(n/2) for g ~ N(0, I_n), n >= 1. */
relusv_status relusv_gaussian_to_spherical_factor(uint64_t n, double *factor);

/* ------------------------------------------- streaming width accumulator */

/* Running per-direction extremes of <g_j, x> over all points added; adding
 * batches gives the one-shot relusv_gmw result with the same seed, up to the
 * rounding of single products (BLAS may round <g_j, x> differently, by a few
 * units of eps |g_j| |x|, depending on the batch shape). Merging is exact. */
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
 * that size, and import into a new accumulator (free it with *_free).
 * Format version 2 (little-endian): the 48-byte header "RSVW", version,
 * precision bits, reserved (0), dimension, samples, seed, points; then the
 * samples maxima and minima (doubles); then the CRC-32 (zlib's) of all the
 * bytes before it. Import checks the size, the checksum, every header field
 * (reserved included) and dimension x samples <= 2^28 and the memory limit
 * before it allocates anything (RELUSV_ERROR_CORRUPT_STATE or
 * RELUSV_ERROR_OUT_OF_MEMORY). Version 1 (no checksum) is still imported. */
relusv_status relusv_gmw_accumulator_state_size(const relusv_gmw_accumulator *accumulator, size_t *size);
relusv_status relusv_gmw_accumulator_export(const relusv_gmw_accumulator *accumulator, void *buffer,
                                            size_t capacity);
relusv_status relusv_gmw_accumulator_import(const void *buffer, size_t size,
                                            relusv_gmw_accumulator **accumulator);

/* ----------------------------------------------------------------- spectra */

/* Singular values of W (m x n), descending, by LAPACK ?gesdd (values only),
 * in W's precision, with OpenBLAS at one thread (restored after; see
 * Conventions); `values` receives min(m, n) doubles. A W whose rows and
 * columns split into independent blocks (a grouped convolution's kernel
 * matrix, a diagonal) gets the union of its blocks' values (exact; the same
 * for relusv_truncated_svd, relusv_weight_svd_create and the SVD of W inside
 * relusv_relu_singular_values). Values beyond the
 * range of that precision (a float32 W of entries near 1e37, say) give
 * RELUSV_ERROR_NONFINITE, never inf or NaN (as does every entry below). */
relusv_status relusv_singular_values(const relusv_matrix *w, double *values);

/* As relusv_singular_values, the values needed only to an absolute accuracy of
 * `tolerance` * sigma_0 (finite, >= 0; 0 is relusv_singular_values). From
 * eps^(3/4) on (eps of W's precision: 1.8e-12 for float64; a network stored
 * in float32 asks float32's eps, 1.19e-7, the accuracy of an SVD in its own
 * precision) the values may come from the p x p Gram matrix (W W^T or W^T W,
 * ?syrk, ?sytrd, ?sterf) where it resolves them: where its smallest
 * eigenvalue is at least sqrt(eps) times its largest, every value is then
 * within about eps^(3/4) sigma_0 of the SVD's; elsewhere (checked first by a
 * Cholesky factorisation) the SVD. About a third of the time of the SVD of a
 * 4096 x 25088 or a 4096 x 4096 matrix. Since 0.6.0. */
relusv_status relusv_singular_values_tol(const relusv_matrix *w, double tolerance, double *values);

/* Factors of the rank-`rank` truncated SVD W_r = U diag(s) Vt, rank in
 * [0, min(m, n)]: `u` receives m x rank, `s` rank, `vt` rank x n doubles
 * (row-major). With rank 0 nothing is written and the buffers may be NULL. */
relusv_status relusv_truncated_svd(const relusv_matrix *w, size_t rank, double *u, double *s, double *vt);

/* The numerical rank of A (m x n): the number of singular values above
 * max(m, n) * eps * sigma_0, eps the unit roundoff of A's precision (NumPy's
 * matrix_rank convention; the rule the whole library uses, e.g. for rank(W)
 * and for rank(X W^T), from which s_k = 0 exactly, MATH.md section 2). */
relusv_status relusv_numerical_rank(const relusv_matrix *a, size_t *rank);

/* The same rule applied to singular values already computed: `values` holds
 * `count` <= min(rows, columns) descending, finite, nonnegative values of a
 * rows x columns matrix of precision `dtype` (a relusv_dtype). */
relusv_status relusv_rank_of_spectrum(const double *values, size_t count, size_t rows, size_t columns,
                                      int32_t dtype, size_t *rank);

/* The same rule with the machine epsilon `eps` given (finite, in (0, 1)): the
 * number of the `values` above max(rows, columns) * eps * values[0]. The
 * Python package passes float32's epsilon for float16 and bfloat16 weights
 * (the precision they are computed in). Since 0.5.0. */
relusv_status relusv_rank_of_spectrum_eps(const double *values, size_t count, size_t rows, size_t columns,
                                          double eps, size_t *rank);

/* The thin SVD of one weight W, computed once (in W's precision, by ?gesdd
 * with OpenBLAS at one thread, a matrix of independent blocks from its
 * blocks' SVDs) and shared by the calls of relusv_relu_singular_values that
 * bound the same layer over several sets of points (options->weight_svd): each
 * call then skips its own SVD of W, the most expensive step of a wide layer,
 * and reports the same values bit for bit (a layer evaluated scaled, see
 * relusv_relu_singular_values, takes the SVD of its scaled W). A call checks that the handle is
 * the SVD of its W (shape and a 64-bit hash of the entries; RELUSV_ERROR_INVALID_ARGUMENT
 * otherwise) in the precision it computes in (RELUSV_ERROR_DTYPE otherwise).
 * Holds U (m x p), s and Vt (p x n), p = min(m, n); checked against the memory
 * limit first. Free with relusv_weight_svd_free (accepts NULL). Since 0.3.0. */
typedef struct relusv_weight_svd relusv_weight_svd;
relusv_status relusv_weight_svd_create(const relusv_matrix *w, relusv_weight_svd **svd);
/* As relusv_weight_svd_create, holding every singular value but the vectors of
 * only the `vectors` largest (all of them when vectors >= min(m, n)): for
 * curves whose k stay at or below `vectors` (a curve over N points has
 * k < rank(X W^T) <= N), at less than half the cost of the full thin SVD of a
 * wide layer. The values agree with relusv_weight_svd_create's to rounding
 * (LAPACK's accuracy), the vectors are computed by another LAPACK algorithm
 * (?gebrd, ?bdsvdx): a curve given them reports bounds that agree with its
 * own to rounding, each the exact error of its factors. A curve asking a k
 * above `vectors` fails with RELUSV_ERROR_INVALID_ARGUMENT. Since 0.4.0. */
relusv_status relusv_weight_svd_create_leading(const relusv_matrix *w, size_t vectors, relusv_weight_svd **svd);
/* As relusv_weight_svd_create_leading, the values needed only to `tolerance`
 * (relusv_singular_values_tol): where the Gram matrix resolves them, the
 * values, and the vectors of the `vectors` largest, come from it (?stemr,
 * ?ormtr, and one GEMM for the other side's vectors), about a third of the
 * time on a 4096 x 25088 matrix; elsewhere, and with vectors >= min(m, n),
 * as relusv_weight_svd_create_leading. Bounds stay the exact errors of their
 * factors. Since 0.6.0. */
relusv_status relusv_weight_svd_create_tol(const relusv_matrix *w, size_t vectors, double tolerance,
                                           relusv_weight_svd **svd);
/* The pairs of singular vectors the SVD holds: min(m, n), or fewer
 * (relusv_weight_svd_create_leading). Since 0.4.0. */
relusv_status relusv_weight_svd_vectors(const relusv_weight_svd *svd, size_t *vectors);
/* Copies the first `count` pairs (at most relusv_weight_svd_vectors) as
 * doubles: `u` row-major m x count, `vt` row-major count x n, the pairs of the
 * values relusv_weight_svd_values gives in that order; either pointer may be
 * NULL (not copied). Since 0.4.0. */
relusv_status relusv_weight_svd_factors(const relusv_weight_svd *svd, double *u, double *vt, size_t count);
void relusv_weight_svd_free(relusv_weight_svd *svd);
/* Copies the singular values, descending: `count` must be min(m, n). */
relusv_status relusv_weight_svd_values(const relusv_weight_svd *svd, double *values, size_t count);

/* Options of relusv_relu_singular_values; fill with relusv_relu_sv_options_init
 * (the library's defaults), then change fields. Fields are only ever
 * appended (see "ABI stability" above). */
typedef struct relusv_relu_sv_options {
    size_t struct_size;     /* sizeof the struct as the caller compiled it; set by the init function */
    double leaky_slope;     /* a in [0, 1): act(z) = max(z, a z); 0 is the ReLU */
    uint64_t seed;          /* seeds the sphere sample and the mini-batch order */
    uint64_t sphere_points; /* points of the unit-sphere sample used when x is NULL (default 4096;
                               at most 2^31 - 1) */
    uint64_t max_steps;     /* tuning knob (experimental): cap of Adam steps per fit (default 500;
                               fits end earlier by their stopping rule; with fit_stride = 0 a job
                               above the work budget gets fewer, down to 300); 0: no fits,
                               candidates only; values above 2^31 - 1 count as 2^31 - 1 */
    double time_budget;     /* wall-clock seconds for the fits, finite and >= 0; 0: none. Any
                               positive value is accepted: a tiny one fits only the ends */
    uint64_t threads;       /* worker threads across k; 0: one per core; above 1024: 1024 */
    int32_t refine;         /* tuning knob (experimental): non-zero: minimax refinement after the
                               least-squares fit (default 1) */
    int32_t keep_factors;   /* non-zero: keep the factors of each reported approximant */
    uint64_t fit_stride;    /* tuning knob (experimental): fit every fit_stride-th requested k (and
                               the k at both ends, docs/engine.md "Budgets"); 0: automatic, a power of two
                               keeping the work near 4.25e11 flops for the whole curve, whatever
                               the thread count (or time_budget, which also raises the effort when
                               generous); values above 2^31 - 1 count as 2^31 - 1 */
    double learning_rate;   /* tuning knob (experimental): Adam step relative to the RMS entry of
                               each start factor, finite and > 0 (default 0.02) */
    uint64_t batch_size;    /* tuning knob (experimental): mini-batch rows of the least-squares
                               phase when N > 4096, >= 1 (default 1024; full batch otherwise) */
    /* since 0.2.0 */
    uint64_t group_size;    /* P >= 1: every P consecutive rows of x are one point, whose error is
                               the root-sum-square of its rows' (MATH.md section 9; a convolution's
                               patches of one image); N must be a multiple of P (default 1) */
    uint64_t fit_points;    /* tuning knob (experimental): a fit runs on at most this many points,
                               those of largest error at its start (its result certified over all
                               points; repeated on all points when it ends no lower than its
                               start); 0: all points (default 2048; all points give lower bounds at
                               high k on large N, at more work) */
    /* since 0.3.0 */
    const relusv_weight_svd *weight_svd; /* the SVD of w made by relusv_weight_svd_create, used instead
                                            of computing it (NULL, the default: computed) */
} relusv_relu_sv_options;

/* Writes the defaults into the first struct_size bytes of *options (pass
 * sizeof(relusv_relu_sv_options)) and sets options->struct_size. A call given
 * a struct_size this library cannot read fails with RELUSV_ERROR_INVALID_ARGUMENT. */
void relusv_relu_sv_options_init(relusv_relu_sv_options *options, size_t struct_size);

/* Which candidate produced a bound (relusv_bound_source_name gives "exact",
 * "zero", "svd", "fit", "refine", "previous-k", "extended", "rrr",
 * "data-projection", "weighted-rrr"; NULL if unknown). */
typedef enum relusv_bound_source {
    RELUSV_SOURCE_EXACT = 0,      /* k = 0: max_x ||phi(x) - act(b)||, exact */
    RELUSV_SOURCE_ZERO = 1,       /* the certified error of the reported approximant is exactly 0 */
    RELUSV_SOURCE_SVD = 2,        /* the truncated SVD W_k */
    RELUSV_SOURCE_FIT = 3,        /* an iterate of the least-squares Adam fit */
    RELUSV_SOURCE_REFINE = 4,     /* an iterate of the minimax refinement */
    RELUSV_SOURCE_PREVIOUS_K = 5, /* the approximant of a smaller requested k */
    RELUSV_SOURCE_EXTENDED = 6,   /* a smaller k's approximant plus the next singular pairs of W */
    RELUSV_SOURCE_RRR = 7,        /* reduced-rank regression Q_k Q_k^T W, Q the left singular vectors
                                     of W X^T (exact at k >= rank(X W^T)) */
    RELUSV_SOURCE_DATA_PROJECTION = 8, /* W V_k V_k^T, V the right singular vectors of X */
    RELUSV_SOURCE_WEIGHTED_RRR = 9     /* reduced-rank regression on point-weighted pre-activations,
                                          weights raised where the error is large (Lawson) */
} relusv_bound_source;

const char *relusv_bound_source_name(int32_t source);

/* One point of the curve. */
typedef struct relusv_relu_sv_entry {
    uint64_t k;
    double sigma;            /* sigma_k(W) */
    double truncation_bound; /* t_k = max_x ||phi(x) - act(W_k x + b)|| */
    double bound;            /* the certified bound: min over all candidates, <= t_k */
    int32_t source;          /* a relusv_bound_source */
    uint64_t steps;          /* Adam steps spent at this k */
    double seconds;          /* wall time spent at this k */
} relusv_relu_sv_entry;

typedef struct relusv_relu_spectrum_info {
    uint64_t count;       /* number of entries (requested k) */
    uint64_t rows;        /* m */
    uint64_t cols;        /* n */
    uint64_t points;      /* N, points of x or of the sphere sample */
    double data_max_norm; /* max_i ||x_i|| */
    uint64_t fit_stride;  /* fits ran at every fit_stride-th requested k */
    int32_t dtype;        /* precision of the computation */
    int32_t has_factors;  /* non-zero when the factors were kept */
} relusv_relu_spectrum_info;

/* A computed curve; free with relusv_relu_spectrum_free (accepts NULL). */
typedef struct relusv_relu_spectrum relusv_relu_spectrum;

/* Certified upper bounds of the ReLU singular values of phi(x) = act(W x + b)
 * over the points x (MATH.md sections 2-3):
 *   s_k(phi; X) <= bound_k = max_i ||phi(x_i) - act(L x_i + b)||, rank L <= k,
 * for each of the `k_count` values in `ks` (each in [0, min(m, n) - 1], no
 * repeats, any order; k_count = 0 and ks = NULL: all k = 0 .. min(m, n) - 1).
 *   w: m x n. bias: 1 x m (or m x 1), NULL for zero. x: N x n, rows are
 *   points; NULL: a sample of options->sphere_points points of the unit sphere
 *   drawn with options->seed, followed by the 2 r unit vectors +-v_j (right
 *   singular vectors of w, r its numerical rank), where the layer is largest
 *   (the unbiased case over the ball when bias = NULL; values over a sample
 *   approach the suprema over the ball from below).
 *   options: NULL for the defaults.
 * With options->group_size = P > 1 every P consecutive rows of x form one
 * point and the error of a point is the root-sum-square over its rows.
 * bound_k is the minimum over candidates each evaluated exactly over all
 * points: the exact value at k = 0, the truncated SVD W_k, reduced-rank
 * regression Q_k Q_k^T W (also with the points weighted by Lawson's rule: at
 * every k where 5 K N m min(N, m) <= 1e10, else by bands of at most 128 k)
 * and the data projection
 * W V_k V_k^T, the approximant
 * of the previous requested k, the previous best extended by the next singular
 * pairs, and Adam fits from a cold start (the best of W_k and the data-aware
 * candidates) and a warm start (the extension), so the curve is non-increasing
 * in k and never above t_k; source "zero" when that value is exactly 0.
 * Precision: float32 when w, bias and x are all float32, else float64. Every
 * bound is the float64 maximum error of the returned factors: in float32 each
 * point whose float32 error could, by the worst-case rounding bound of its
 * dot products, reach the float64 maximum is recomputed in float64.
 * Work runs on `threads` threads across k, the whole call with OpenBLAS at
 * one thread (restored after; results bit-identical whatever the thread
 * counts, see Conventions); progress and cancellation are relayed on the
 * calling thread at least every 50 ms. Bounds are certified at every scale:
 * a layer whose pre-activations are tiny (down to the smallest normal numbers)
 * or huge is evaluated scaled by a power of two, where no squared error
 * underflows or overflows, and the bounds scaled back (rounded up); bounds
 * beyond the range of float64 give RELUSV_ERROR_NONFINITE. On success
 * *spectrum is a new object. */
relusv_status relusv_relu_singular_values(const relusv_matrix *w, const relusv_matrix *bias,
                                          const relusv_matrix *x, const uint64_t *ks, size_t k_count,
                                          const relusv_relu_sv_options *options,
                                          relusv_relu_spectrum **spectrum,
                                          relusv_progress_fn progress, void *user_data);
void relusv_relu_spectrum_free(relusv_relu_spectrum *spectrum);
relusv_status relusv_relu_spectrum_info_get(const relusv_relu_spectrum *spectrum,
                                            relusv_relu_spectrum_info *info);
/* Copies the `count` entries, in the order the k were requested. */
relusv_status relusv_relu_spectrum_entries(const relusv_relu_spectrum *spectrum, relusv_relu_sv_entry *entries);
/* Factors of entry `index` (needs keep_factors): *rank = r, then, when not
 * NULL, `u` receives m x r and `v` r x n doubles with L = u v. Call with u = v
 * = NULL first to learn r. */
relusv_status relusv_relu_spectrum_factors(const relusv_relu_spectrum *spectrum, size_t index, size_t *rank,
                                           double *u, double *v);

/* ------------------------------------------- Gaussian mean width (operators) */

typedef struct relusv_operator_width {
    double estimate;  /* Monte-Carlo estimate (mean trimmed by `trim` at each end) */
    double std_error; /* its standard error */
    double lower;     /* certain lower bound; NaN when none is known (ReLU layer) */
    double upper;     /* certain upper bound */
    double norm;      /* linear: ||W||_op; layer: max_i ||phi(x_i)|| over the points */
    uint64_t samples; /* Gaussian directions */
    uint64_t points;  /* points of the set phi(X) (0 for the linear map) */
} relusv_operator_width;

/* Gaussian mean width of an operator (MATH.md section 5).
 * relu = 0: the linear map W (bias and x must be NULL):
 *   w(W) = 2 E||W^T g||, g ~ N(0, I_m), from `samples` directions of `seed`;
 *   lower = 2 sqrt(2/pi) ||W||_F, upper = 2 ||W||_F, norm = sigma_0(W).
 * relu != 0: the layer phi(x) = act(W x + b) (leaky slope in [0, 1)): the
 *   width of the set phi(X) over the rows of x, or over `sphere_points` points
 *   of the unit sphere drawn with `seed` when x is NULL (an estimate from
 *   inside of w(phi(B))); upper = 2 ||W||_F max_i ||x_i|| (Sudakov-Fernique:
 *   phi is 1-Lipschitz after W), lower = NaN, norm = max_i ||phi(x_i)||. */
relusv_status relusv_operator_gmw(const relusv_matrix *w, const relusv_matrix *bias, const relusv_matrix *x,
                                  int32_t relu, double leaky_slope, size_t samples, size_t sphere_points,
                                  uint64_t seed, double trim, relusv_operator_width *result,
                                  relusv_progress_fn progress, void *user_data);

/* ------------------------------------------- convolutions (MATH.md section 9) */

/* The singular values of the stride-1 circular convolution A_K with kernel
 * K of shape (C_out, C_in, kh, kw) on inputs of C_in x height x width
 * (Sedghi, Gupta, Long, ICLR 2019): the union over the frequencies (u, v)
 * of the singular values of F(u, v) = sum_{a, c} K[:, :, a, c]
 * exp(-2 pi i (u a / height + v c / width)), C_out x C_in complex, computed
 * by direct summation over the kh kw taps and LAPACK ?gesdd (complex,
 * values only), one frequency per conjugate pair (same values), in the
 * kernel's precision.
 *   kernel: K_mat = K reshaped to C_out x (C_in kh kw), as torch stores it;
 *   in_channels, kernel_height, kernel_width: C_in, kh, kw (the kernel must
 *   not be larger than the input); top: how many of the largest values
 *   (0: all height x width x min(C_out, C_in)); threads: 0 for one per core.
 *   `values` receives that many doubles, descending; with values = NULL the
 *   arguments and the memory the computation needs are checked, nothing is
 *   computed (call it so before allocating `values` for a large spectrum).
 * Groups and strides: relusv_conv_spectrum below (this entry is its case
 * G = 1, s = 1). Zero padding is not circular: see the Python package's
 * certified bracket of the top value. Progress counts frequencies;
 * cancellation stops between blocks of frequencies. */
relusv_status relusv_conv_singular_values(const relusv_matrix *kernel, size_t in_channels, size_t kernel_height,
                                          size_t kernel_width, size_t height, size_t width, size_t top,
                                          size_t threads, double *values, relusv_progress_fn progress,
                                          void *user_data);

/* Options of relusv_conv_spectrum; fill with relusv_conv_options_init (the
 * library's defaults), then change fields. Fields are only ever appended
 * (see "ABI stability" above). */
typedef struct relusv_conv_options {
    size_t struct_size; /* sizeof the struct as the caller compiled it; set by the init function */
    uint64_t groups;    /* G >= 1 dividing C_out (default 1): output channels g C_out / G ..< (g + 1)
                           C_out / G see only input channels g C_in / G ..< (g + 1) C_in / G; a
                           depthwise convolution has G = C_in. The weight alone cannot tell. */
    uint64_t stride;    /* s >= 1 dividing height and width (default 1) */
    uint64_t top;       /* how many of the largest values (0: all, the default) */
    uint64_t threads;   /* worker threads; 0: one per core (default) */
} relusv_conv_options;

/* Writes the defaults into the first struct_size bytes of *options (pass
 * sizeof(relusv_conv_options)) and sets options->struct_size. */
void relusv_conv_options_init(relusv_conv_options *options, size_t struct_size);

/* The singular values of the circular convolution A_K with G groups and
 * stride s (MATH.md section 9, "Grouped convolutions" and "Strided circular
 * convolutions"): K of shape (C_out, C_in / G, kernel_height, kernel_width),
 * inputs C_in x height x width, outputs C_out x (height / s) x (width / s).
 * The spectrum is the union over the groups and over the output frequencies
 * (u', v') of the singular values of the C_out / G x (C_in / G) s^2 block
 * (1 / s) [F_g(u' + j height / s, v' + l width / s)]_{j, l < s} (F_g as above,
 * for group g's kernel): (height / s)(width / s) G min(C_out / G, (C_in / G) s^2)
 * values, computed in the kernel's precision and returned descending.
 *   kernel: K_mat = K reshaped to C_out x ((C_in / G) kernel_height kernel_width);
 *   group_in_channels: C_in / G, the weight's second dimension;
 *   options: NULL for the defaults (no groups, stride 1, all values);
 *   values: options->top doubles (all values when top is 0); NULL: only the
 *   arguments and the memory (the computation's and that many doubles) are
 *   checked, nothing is computed;
 *   scratch_bytes: NULL, or receives the bytes the computation allocates
 *   (checked against the memory limit before anything is allocated).
 * Kernel entries near the largest float give the correct values when they
 * are representable in the kernel's precision, RELUSV_ERROR_NONFINITE when
 * they are not. Progress counts output frequencies; cancellation stops
 * between blocks of frequencies. */
relusv_status relusv_conv_spectrum(const relusv_matrix *kernel, size_t group_in_channels, size_t kernel_height,
                                   size_t kernel_width, size_t height, size_t width,
                                   const relusv_conv_options *options, double *values, size_t *scratch_bytes,
                                   relusv_progress_fn progress, void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* RELUSV_H */

/* ================================================= experimental section
 * Declared only when RELUSV_EXPERIMENTAL is defined before relusv.h is
 * included. Not covered by "ABI stability": these declarations may change or
 * disappear in any version, so a program using them should require
 * relusv_version_number() == RELUSV_VERSION_NUMBER. */
#if defined(RELUSV_EXPERIMENTAL) && !defined(RELUSV_H_EXPERIMENTAL)
#define RELUSV_H_EXPERIMENTAL

#ifdef __cplusplus
extern "C" {
#endif

/* The least-squares objective of MATH.md section 3 and its analytic gradient
 * over all rows of x: F = sum_i ||act(U V x_i + b) - act(W x_i + b)||^2,
 * dF/dU = 2 D^T P, dF/dV = 2 U^T D^T X (P = X V^T, D = E * act'(Z)).
 * u: m x k, v: k x n (k >= 1); bias as in relusv_relu_singular_values (NULL:
 * zero). `grad_u` receives m x k and `grad_v` k x n doubles. Precision as
 * relusv_relu_singular_values (all of w, bias, x, u, v float32 for float32).
 * A loss or gradient entry beyond the range of that precision (finite inputs
 * whose products overflow) gives RELUSV_ERROR_NONFINITE, never inf or NaN. */
relusv_status relusv_relu_fit_gradient(const relusv_matrix *w, const relusv_matrix *bias, const relusv_matrix *x,
                                       const relusv_matrix *u, const relusv_matrix *v, double leaky_slope,
                                       double *loss, double *grad_u, double *grad_v);

#ifdef __cplusplus
}
#endif

#endif /* RELUSV_EXPERIMENTAL */
