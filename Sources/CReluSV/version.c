/* The run-time version: the RELUSV_VERSION_* macros of relusv.h as this
 * library was compiled with them. */
#include "relusv.h"

const char *relusv_version_string(void) {
    return RELUSV_VERSION_STRING;
}

uint32_t relusv_version_number(void) {
    return RELUSV_VERSION_NUMBER;
}
