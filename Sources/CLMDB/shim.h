#ifndef RAGD_CLMDB_SHIM_H
#define RAGD_CLMDB_SHIM_H
// LMDB's API imports directly; this header only pulls it in.
#include <lmdb.h>
#endif
