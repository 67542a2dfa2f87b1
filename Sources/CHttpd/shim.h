// Non-variadic wrappers for libmicrohttpd calls Swift cannot make directly.
#ifndef VALET_CHTTPD_SHIM_H
#define VALET_CHTTPD_SHIM_H
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>
#endif
