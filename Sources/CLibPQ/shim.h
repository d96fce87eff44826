#ifndef KT_CLIBPQ_SHIM_H
#define KT_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
