/*
 * server.h - the real arbiterd for integration tests: started on a free
 * loopback port (port 0, read back from --port-file), spoken to over real
 * WebSocket and HTTP (src/net/client.h), stopped with a signal.
 *
 * Every helper asserts (cmocka) on failure. JSON values returned are new
 * references the caller drops; clients are the caller's to close.
 */
#ifndef ARB_TEST_SERVER_H
#define ARB_TEST_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "net/client.h"

typedef struct test_server {
    pid_t pid;
    int port;
    char data_dir[1024];
    char ws_url[64];   /* ws://127.0.0.1:PORT/ */
    char http_url[64]; /* http://127.0.0.1:PORT */
} test_server;

/* Start arbiterd --data data_dir --listen 127.0.0.1:0 --admin admin plus
 * extra (NULL-terminated, may be NULL) and wait (at most 10 s) until it
 * listens. */
void test_server_start(test_server *server, const char *data_dir, const char *const extra[]);
/* Send sig (SIGTERM, SIGKILL...) and wait; returns the exit code, or 128 +
 * the signal when it died of one. */
int test_server_stop(test_server *server, int sig);

/* Start the server again after a stop: the same data directory and the
 * same port, so that clients holding its URL reconnect to it. */
void test_server_restart(test_server *server);

/* Connect and say hello as client_id; asserts the welcome. */
arb_ws_client *test_ws_open(const test_server *server, const char *client_id);
/* Send json_pack(format, ...) as one text frame. */
void test_ws_send(arb_ws_client *client, const char *format, ...);
/* The next message, parsed (asserts one arrives within timeout_ms). */
json_t *test_ws_recv(arb_ws_client *client, int timeout_ms);
/* The next message, which must have "type" == type. */
json_t *test_ws_expect(arb_ws_client *client, const char *type, int timeout_ms);
/* Propose and wait for the answer (committed or rejected), skipping patches. */
json_t *test_ws_propose(arb_ws_client *client, uint64_t client_seq, const char *stream,
                        const char *action, json_t *args /* stolen */);

/* HTTP to the server: path is appended to http_url. Returns the status;
 * *body_out (may be NULL) gets the parsed JSON body or NULL. */
int test_http(const test_server *server, const char *method, const char *path, const char *headers,
              const char *body, json_t **body_out);

/* Open accounts a,b,... on stream as admin, owned by the given owners, each
 * funded with amount. */
void test_ledger_setup(const test_server *server, const char *stream, const char *const owners[],
                       size_t count, long long amount);

#endif
