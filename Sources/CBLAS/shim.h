#ifndef RAGD_CBLAS_SHIM_H
#define RAGD_CBLAS_SHIM_H
// OpenBLAS's CBLAS interface imports directly (Debian: libopenblas-dev, whose cblas.h is found through
// pkg-config "openblas"); this header only pulls it in.
#include <cblas.h>
#endif
