#ifndef KT_CLIBPQ_SHIM_H
#define KT_CLIBPQ_SHIM_H
#include <libpq-fe.h>
/* The event loop that drives nonblocking libpq connections (Linux). */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <poll.h>
#endif
