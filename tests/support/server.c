/*
 * server.c - starting and speaking to the real arbiterd in tests; see
 * server.h.
 */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#define START_WAIT_MS 10000

static void nap_ms(long ms)
{
    struct timespec nap = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&nap, NULL);
}

void test_server_start(test_server *server, const char *data_dir, const char *const extra[])
{
    memset(server, 0, sizeof *server);
    snprintf(server->data_dir, sizeof server->data_dir, "%s", data_dir);
    char port_file[1100];
    snprintf(port_file, sizeof port_file, "%s.port", data_dir);
    unlink(port_file);
    const char *bin_dir = getenv("ARB_BIN_DIR") != NULL ? getenv("ARB_BIN_DIR") : "build/bin";
    char path[4096];
    snprintf(path, sizeof path, "%s/arbiterd", bin_dir);
    const char *argv[40] = {"arbiterd",
                            "--data",
                            data_dir,
                            "--listen",
                            "127.0.0.1:0",
                            "--port-file",
                            port_file,
                            "--admin",
                            "admin",
                            "--log-level",
                            getenv("ARB_LOG_LEVEL") != NULL ? getenv("ARB_LOG_LEVEL") : "warn"};
    size_t argc = 11;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && argc < 39; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    server->pid = fork();
    assert_true(server->pid >= 0);
    if (server->pid == 0) {
        execv(path, (char *const *)argv);
        _exit(127);
    }
    for (int waited = 0; waited < START_WAIT_MS; waited += 20) {
        FILE *file = fopen(port_file, "r");
        if (file != NULL) {
            int ok = fscanf(file, "%d", &server->port);
            fclose(file);
            if (ok == 1 && server->port > 0)
                break;
        }
        int status = 0;
        assert_int_equal(waitpid(server->pid, &status, WNOHANG), 0); /* still running */
        nap_ms(20);
    }
    assert_true(server->port > 0);
    snprintf(server->ws_url, sizeof server->ws_url, "ws://127.0.0.1:%d/", server->port);
    snprintf(server->http_url, sizeof server->http_url, "http://127.0.0.1:%d", server->port);
}

int test_server_stop(test_server *server, int sig)
{
    if (server->pid <= 0)
        return -1;
    assert_int_equal(kill(server->pid, sig), 0);
    int status = 0;
    pid_t pid;
    do {
        pid = waitpid(server->pid, &status, 0);
    } while (pid < 0 && errno == EINTR);
    assert_int_equal(pid, server->pid);
    server->pid = 0;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

void test_server_restart(test_server *server)
{
    char listen[64];
    int port = server->port;
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    char data_dir[sizeof server->data_dir];
    memcpy(data_dir, server->data_dir, sizeof data_dir);
    const char *const extra[] = {"--listen", listen, NULL};
    test_server_start(server, data_dir, extra);
    assert_int_equal(server->port, port);
}

void test_ws_send(arb_ws_client *client, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    json_t *message = json_vpack_ex(NULL, 0, format, args);
    va_end(args);
    assert_non_null(message);
    char *text = json_dumps(message, JSON_COMPACT);
    assert_non_null(text);
    assert_int_equal(arb_ws_send(client, text, strlen(text)), 0);
    free(text);
    json_decref(message);
}

json_t *test_ws_recv(arb_ws_client *client, int timeout_ms)
{
    char *text = NULL;
    size_t len = 0;
    int rc = arb_ws_recv(client, timeout_ms, &text, &len);
    if (rc != 0)
        fail_msg("no message within %d ms: %s", timeout_ms, arb_err_name(rc));
    json_error_t error;
    json_t *message = json_loadb(text, len, 0, &error);
    if (message == NULL)
        fail_msg("not JSON: %s", text);
    free(text);
    return message;
}

json_t *test_ws_expect(arb_ws_client *client, const char *type, int timeout_ms)
{
    json_t *message = test_ws_recv(client, timeout_ms);
    const char *got = json_string_value(json_object_get(message, "type"));
    if (got == NULL || strcmp(got, type) != 0) {
        char *text = json_dumps(message, JSON_COMPACT);
        fail_msg("expected %s, got %s", type, text);
    }
    return message;
}

arb_ws_client *test_ws_open(const test_server *server, const char *client_id)
{
    arb_ws_client *client = NULL;
    assert_int_equal(arb_ws_connect(server->ws_url, 5000, &client), 0);
    test_ws_send(client, "{s:s, s:i, s:s}", "type", "hello", "proto", 1, "client_id", client_id);
    json_decref(test_ws_expect(client, "welcome", 5000));
    return client;
}

json_t *test_ws_propose(arb_ws_client *client, uint64_t client_seq, const char *stream,
                        const char *action, json_t *args)
{
    test_ws_send(client, "{s:s, s:I, s:s, s:s, s:o}", "type", "propose", "client_seq",
                 (json_int_t)client_seq, "stream", stream, "action", action, "args", args);
    for (;;) {
        json_t *message = test_ws_recv(client, 10000);
        const char *type = json_string_value(json_object_get(message, "type"));
        if (strcmp(type, "committed") == 0 || strcmp(type, "rejected") == 0)
            return message;
        assert_true(strcmp(type, "patch") == 0 || strcmp(type, "snapshot") == 0);
        json_decref(message);
    }
}

int test_http(const test_server *server, const char *method, const char *path, const char *headers,
              const char *body, json_t **body_out)
{
    char url[4096];
    snprintf(url, sizeof url, "%s%s", server->http_url, path);
    arb_http_response response;
    int rc = arb_http_request(url, method, headers, body, body != NULL ? strlen(body) : 0, 10000,
                              &response);
    if (rc != 0)
        fail_msg("%s %s: %s", method, path, arb_err_name(rc));
    if (body_out != NULL) {
        json_error_t error;
        *body_out =
            response.body_len > 0 ? json_loadb(response.body, response.body_len, 0, &error) : NULL;
    }
    int status = response.status;
    arb_http_response_clear(&response);
    return status;
}

void test_ledger_setup(const test_server *server, const char *stream, const char *const owners[],
                       size_t count, long long amount)
{
    arb_ws_client *admin = test_ws_open(server, "admin");
    /* Far above the small client_seqs tests use for "admin", and never
     * repeated within the process (several setups may share a server). */
    static uint64_t seq;
    if (seq == 0)
        seq = (uint64_t)time(NULL) * 1000;
    for (size_t i = 0; i < count; i++) {
        json_t *outcome = test_ws_propose(admin, ++seq, stream, "open_account",
                                          json_pack("{s:s, s:s, s:s}", "account", owners[i],
                                                    "owner", owners[i], "currency", "EUR"));
        assert_string_equal(json_string_value(json_object_get(outcome, "type")), "committed");
        json_decref(outcome);
        if (amount <= 0)
            continue;
        outcome = test_ws_propose(
            admin, ++seq, stream, "deposit",
            json_pack("{s:s, s:I}", "account", owners[i], "amount", (json_int_t)amount));
        assert_string_equal(json_string_value(json_object_get(outcome, "type")), "committed");
        json_decref(outcome);
    }
    arb_ws_close(admin);
}
