/*
 * server.h - the network front end: WebSocket protocol, HTTP API, static
 * files (docs/protocol.md is the contract).
 *
 * arb_server_run puts an open engine on the network and returns when *stop
 * becomes non-zero (a signal handler sets it) and the shutdown is complete:
 *
 *   1. stop accepting connections and reading frames;
 *   2. decide what was already queued, commit it, send every outcome;
 *   3. flush what each connection has queued (bounded by a grace period),
 *      close every WebSocket with 1001 "server shutting down".
 *
 * Threads: the calling thread becomes the network thread (libwebsockets'
 * service loop); the server starts one engine thread, the only thread that
 * touches the engine from then on (it also fires the timers). Ownership: the
 * caller owns the engine and the config's strings; both must outlive the call.
 */
#ifndef ARB_NET_SERVER_H
#define ARB_NET_SERVER_H

#include <signal.h>
#include <stddef.h>

#include "arbiter/engine.h"

typedef struct arb_server_config {
    const char *host;     /* interface to listen on: "127.0.0.1" */
    int port;             /* 0: let the kernel choose (see port_file) */
    const char *web_root; /* directory served at "/" (index.html); NULL: none */
    int idle_timeout_s;   /* 0: ARB_NET_IDLE_TIMEOUT_S_DEFAULT */
    /* Bytes that may wait for one connection; 0: ARB_NET_OUTBOUND_BYTES_MAX
     * (also the most allowed). */
    size_t outbound_bytes_max;
    /* Client ids that get the admin role (until authentication lands, the
     * client_id in hello is claimed, not proven: listen on loopback). */
    const char *const *admins;
    size_t admin_count;
    /* When set, the bound port is written there (decimal + newline) once the
     * server listens: tests start the server on port 0 and read it. */
    const char *port_file;
    volatile sig_atomic_t *stop; /* the server stops when *stop != 0 */
} arb_server_config;

/* Parse "HOST:PORT" (IPv4 or a name, port 0..65535) into host (a copy of at
 * most host_size - 1 bytes) and *port. 0 or ARB_EINVALID_ARGUMENT. */
int arb_server_parse_listen(const char *text, char *host, size_t host_size, int *port_out);

/* Serve until *config->stop. 0 after a clean shutdown; ARB_EIO when the
 * port cannot be bound; ARB_ENOMEM. */
int arb_server_run(arb_engine *engine, const arb_server_config *config);

#endif
