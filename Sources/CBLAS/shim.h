// OpenBLAS's C interface (Debian: libopenblas-dev). Only cblas.h is exposed.
#include <cblas.h>
