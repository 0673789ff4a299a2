#ifndef RAGD_CMALLOC_SHIM_H
#define RAGD_CMALLOC_SHIM_H
// glibc's malloc tuning (mallopt, M_MMAP_THRESHOLD) and malloc_trim, which Swift's Glibc module does not export.
#include <malloc.h>
#endif
