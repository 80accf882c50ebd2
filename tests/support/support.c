/*
 * support.c - helpers for the test programs (see support.h).
 */
#include "support.h"

#include "core/log.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Tests print only warnings and errors of the library (ARB_LOG_LEVEL=debug
 * shows everything), so that a failing test's output is readable. */
__attribute__((constructor)) static void quiet_logs(void)
{
    arb_log_level level = ARB_LOG_WARN;
    const char *name = getenv("ARB_LOG_LEVEL");
    if (name != NULL && arb_log_parse_level(name, &level) != 0)
        level = ARB_LOG_WARN;
    arb_log_set_level(level);
}

char *test_mkdtemp(const char *prefix)
{
    const char *base = getenv("ARB_TEST_TMP");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    size_t size = strlen(base) + strlen(prefix) + 16;
    char *path = malloc(size);
    assert_non_null(path);
    snprintf(path, size, "%s/%s.XXXXXX", base, prefix);
    assert_non_null(mkdtemp(path));
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void test_rmdir(char *path)
{
    if (path == NULL)
        return;
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

int64_t test_clock_ms(void *user)
{
    return ((test_clock *)user)->now_ms;
}

static void command_v(arb_command *command, const char *client_id, arb_role role, uint64_t seq,
                      const char *stream, const char *action, const char *args_format, va_list ap)
{
    json_error_t error;
    json_t *args = json_vpack_ex(&error, 0, args_format, ap);
    if (args == NULL)
        fail_msg("json_pack: %s", error.text);
    arb_command_init(command);
    assert_int_equal(arb_command_set(command, client_id, role, seq, stream, action, args), 0);
    json_decref(args);
}

void test_command(arb_command *command, const char *client_id, arb_role role, uint64_t seq,
                  const char *stream, const char *action, const char *args_format, ...)
{
    va_list ap;
    va_start(ap, args_format);
    command_v(command, client_id, role, seq, stream, action, args_format, ap);
    va_end(ap);
}

void test_exec(arb_engine *engine, const arb_command *command, arb_outcome *outcome)
{
    assert_int_equal(arb_engine_execute(engine, command, 1, outcome), 0);
    assert_true(outcome->kind == ARB_OUTCOME_COMMITTED || outcome->kind == ARB_OUTCOME_REJECTED);
}

int test_propose(arb_engine *engine, arb_outcome *outcome, const char *client_id, arb_role role,
                 uint64_t seq, const char *stream, const char *action, const char *args_format, ...)
{
    va_list ap;
    va_start(ap, args_format);
    int code =
        test_vpropose(engine, outcome, client_id, role, seq, stream, action, args_format, ap);
    va_end(ap);
    return code;
}

int test_vpropose(arb_engine *engine, arb_outcome *outcome, const char *client_id, arb_role role,
                  uint64_t seq, const char *stream, const char *action, const char *args_format,
                  va_list ap)
{
    arb_command command;
    command_v(&command, client_id, role, seq, stream, action, args_format, ap);
    arb_outcome local;
    arb_outcome *out = outcome != NULL ? outcome : &local;
    test_exec(engine, &command, out);
    arb_command_clear(&command);
    int code = out->kind == ARB_OUTCOME_COMMITTED ? 0 : out->code;
    if (outcome == NULL)
        arb_outcome_clear(&local);
    return code;
}

uint64_t test_seed(const char *test_name)
{
    const char *env = getenv("ARB_SEED");
    uint64_t seed;
    if (env != NULL && env[0] != '\0') {
        seed = strtoull(env, NULL, 10);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
    }
    if (seed == 0)
        seed = 1;
    printf("%s: seed %llu (replay with ARB_SEED=%llu)\n", test_name, (unsigned long long)seed,
           (unsigned long long)seed);
    return seed;
}

uint64_t test_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

uint64_t test_random_below(uint64_t *state, uint64_t bound)
{
    return bound == 0 ? 0 : test_random(state) % bound;
}

int test_run_tool(char **out, const char *const argv[])
{
    const char *bin_dir = getenv("ARB_BIN_DIR");
    if (bin_dir == NULL)
        bin_dir = "build/bin";
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", bin_dir, argv[0]);
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipe_fds[1], STDOUT_FILENO);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(pipe_fds[1]);
    size_t len = 0, cap = 4096;
    char *text = malloc(cap);
    assert_non_null(text);
    for (;;) {
        if (len + 1024 > cap) {
            cap *= 2;
            text = realloc(text, cap);
            assert_non_null(text);
        }
        ssize_t n = read(pipe_fds[0], text + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    text[len] = '\0';
    close(pipe_fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (out != NULL)
        *out = text;
    else
        free(text);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

json_t *test_state(arb_engine *engine, const char *stream, uint64_t *version_out)
{
    arb_principal admin = {.id = "test", .role = ARB_ROLE_ADMIN};
    json_t *state = NULL;
    uint64_t version = 0;
    assert_int_equal(arb_engine_state(engine, stream, &admin, &state, &version), 0);
    if (version_out != NULL)
        *version_out = version;
    return state;
}
