/* Names and descriptions of the status codes declared in relusv.h: the one
 * table every binding (Swift, Python, C) reads them from. */
#include "relusv.h"

static const char *const status_names[RELUSV_STATUS_COUNT] = {
    "RELUSV_OK",
    "RELUSV_ERROR_NULL_POINTER",
    "RELUSV_ERROR_INVALID_ARGUMENT",
    "RELUSV_ERROR_SHAPE",
    "RELUSV_ERROR_DTYPE",
    "RELUSV_ERROR_NONFINITE",
    "RELUSV_ERROR_EMPTY",
    "RELUSV_ERROR_SIZE_OVERFLOW",
    "RELUSV_ERROR_MISMATCH",
    "RELUSV_ERROR_CORRUPT_STATE",
    "RELUSV_ERROR_LAPACK",
    "RELUSV_ERROR_CANCELLED",
    "RELUSV_ERROR_INTERNAL",
    "RELUSV_ERROR_OUT_OF_MEMORY",
    "RELUSV_ERROR_INVALID_HANDLE",
};

static const char *const status_strings[RELUSV_STATUS_COUNT] = {
    "success",
    "a required pointer argument is NULL",
    "an argument is out of range",
    "a matrix shape or stride is invalid or inconsistent",
    "unknown or mismatched element type",
    "input contains NaN or infinity, or a result overflowed",
    "the set has no points",
    "sizes too large to allocate",
    "objects that must agree do not",
    "serialised state is malformed",
    "a LAPACK routine failed",
    "cancelled by the progress callback",
    "internal error",
    "the memory the input needs exceeds the memory limit; nothing was allocated",
    "not a live handle of the expected kind",
};

const char *relusv_status_name(int32_t status) {
    return (status >= 0 && status < RELUSV_STATUS_COUNT) ? status_names[status] : 0;
}

const char *relusv_status_string(int32_t status) {
    return (status >= 0 && status < RELUSV_STATUS_COUNT) ? status_strings[status] : "unknown status";
}
