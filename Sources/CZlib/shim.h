#ifndef RAGD_CZLIB_SHIM_H
#define RAGD_CZLIB_SHIM_H
// zlib's API imports directly; this header only pulls it in (Debian: zlib1g-dev).
#include <zlib.h>
#endif
