/* libFuzzer target: relusv_gmw_accumulator_import on arbitrary bytes.
 *
 * The first byte chooses the mode: odd, the rest of the input is imported as
 * it is (every corruption must be refused by the checksum or a field check);
 * even, the harness first rewrites the trailing CRC-32 so that the mutated
 * header and extremes reach the field checks behind the checksum. An accepted
 * state must export to the same bytes (as version 2), answer info_get, and
 * estimate or report an error -- never crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relusv.h"

static uint32_t crc32(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("RELUSV_MEMORY_LIMIT", "256M", 1); /* a forged size is refused, not allocated */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int reseal = (data[0] & 1) == 0;
    size -= 1;
    uint8_t *state = malloc(size ? size : 1);
    memcpy(state, data + 1, size);
    if (reseal && size >= 52 && memcmp(state + 4, "\x02\0\0\0", 4) == 0) {
        uint32_t c = crc32(state, size - 4);
        memcpy(state + size - 4, &c, 4); /* little-endian host */
    }
    relusv_gmw_accumulator *acc = NULL;
    if (relusv_gmw_accumulator_import(state, size, &acc) == RELUSV_OK) {
        relusv_gmw_accumulator_info info;
        if (relusv_gmw_accumulator_info_get(acc, &info) != RELUSV_OK) abort();
        size_t n = 0;
        if (relusv_gmw_accumulator_state_size(acc, &n) != RELUSV_OK) abort();
        uint8_t *out = malloc(n);
        if (relusv_gmw_accumulator_export(acc, out, n) != RELUSV_OK) abort();
        /* Version 2 input: the export is the same bytes. */
        if (memcmp(state + 4, "\x02\0\0\0", 4) == 0 && (n != size || memcmp(out, state, n) != 0)) abort();
        free(out);
        relusv_width_result r;
        double *widths = malloc(sizeof(double) * info.samples);
        relusv_status s = relusv_gmw_accumulator_estimate(acc, 0.1, 0, widths, &r);
        if (s != RELUSV_OK && s != RELUSV_ERROR_EMPTY && s != RELUSV_ERROR_NONFINITE) abort();
        free(widths);
        relusv_gmw_accumulator_free(acc);
    } else if (acc != NULL) {
        abort(); /* outputs are written only on success */
    }
    free(state);
    return 0;
}
