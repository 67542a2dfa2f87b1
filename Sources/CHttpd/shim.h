// Non-variadic wrappers for libmicrohttpd calls Swift cannot make directly, and the macros it cannot import.
#ifndef VALET_CHTTPD_SHIM_H
#define VALET_CHTTPD_SHIM_H
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

// MHD_SIZE_UNKNOWN and the content-reader return codes are casts in macros; Swift sees none of them.
static const uint64_t VALET_MHD_SIZE_UNKNOWN = UINT64_MAX;
static const ssize_t VALET_MHD_READER_END_OF_STREAM = (ssize_t)-1;
static const ssize_t VALET_MHD_READER_END_WITH_ERROR = (ssize_t)-2;
// POLLRDHUP needs _GNU_SOURCE, which the module map can't set; the value is Linux's.
static const short VALET_POLLRDHUP = 0x2000;

/// Starts a daemon with everything Valet tunes. `thread_pool_size` <= 1 means one internal polling thread.
/// `memory_limit` bounds the per-connection pool, which is where MHD keeps the request line and headers,
/// so it doubles as the header size limit. `address` is the resolved host and port to bind (never NULL).
/// `per_ip_limit` 0 means no limit per client address. MHD reports every connection's opening and closing to
/// `connection_events`, always before it closes the socket.
static inline struct MHD_Daemon *valet_mhd_start(
    unsigned int flags, uint16_t port, const struct sockaddr *address,
    MHD_AccessHandlerCallback handler, void *handler_cls,
    MHD_RequestCompletedCallback completed, void *completed_cls,
    MHD_NotifyConnectionCallback connection_events, void *connection_events_cls,
    unsigned int connection_limit, unsigned int per_ip_limit, unsigned int connection_timeout_seconds,
    size_t memory_limit, unsigned int thread_pool_size, unsigned int listen_backlog)
{
    // The caller always binds an explicit address (it resolves the host itself), so there is one call to make.
    return MHD_start_daemon(flags, port, NULL, NULL, handler, handler_cls,
        MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
        MHD_OPTION_NOTIFY_CONNECTION, connection_events, connection_events_cls,
        MHD_OPTION_CONNECTION_LIMIT, connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, connection_timeout_seconds,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory_limit,
        MHD_OPTION_THREAD_POOL_SIZE, thread_pool_size,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, listen_backlog,
        MHD_OPTION_SOCK_ADDR, address,
        MHD_OPTION_END);
}

/// The connection's socket, or -1; the disconnect watchdog polls it while the connection is suspended.
static inline int valet_mhd_connection_fd(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : (int)info->connect_fd;
}

/// The port the daemon actually bound (useful with port 0), or 0.
static inline uint16_t valet_mhd_bound_port(struct MHD_Daemon *daemon)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info == NULL ? 0 : info->port;
}
#endif
