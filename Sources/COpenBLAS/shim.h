/* BLAS and LAPACK as the engine sees them: CBLAS from OpenBLAS, LAPACKE from
 * the reference LAPACKE (which calls OpenBLAS's LAPACK). The threading
 * controls are OpenBLAS extensions. */
#include <cblas.h>
#include <lapacke.h>
