/* CHECK(condition, printf-style message): the examples' assertion. On failure
 * it prints the message and the line, and returns 1 from main. */
#ifndef RELUSV_EXAMPLES_CHECK_H
#define RELUSV_EXAMPLES_CHECK_H

#include <stdio.h>

#define CHECK(cond, ...)                               \
    do {                                               \
        if (!(cond)) {                                 \
            fprintf(stderr, "FAILED: " __VA_ARGS__);   \
            fprintf(stderr, " (line %d)\n", __LINE__); \
            return 1;                                  \
        }                                              \
    } while (0)

#endif
