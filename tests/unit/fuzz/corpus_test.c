/*
 * corpus_test.c - replays every file of fuzz/corpus/<target>/ through its
 * fuzz target, so that an input that once crashed stays fixed.
 *
 * The targets are #included (fuzz/fuzz.h explains why they allow it), so this
 * one program runs exactly the code libFuzzer runs, here built by the normal
 * Makefile and run by `make test`, `make test-asan` and `make test-tsan`.
 * Each target directory is one test, which fails if the directory is missing
 * or empty. The corpus is found from the working directory (the repository
 * root under tests/run) or else from $ARB_SOURCE_DIR.
 */
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../../fuzz/client_fuzz.c"
#include "../../../fuzz/event_canon_fuzz.c"
#include "../../../fuzz/http_fuzz.c"
#include "../../../fuzz/inventory_decide_fuzz.c"
#include "../../../fuzz/inventory_snapshot_fuzz.c"
#include "../../../fuzz/json_fuzz.c"
#include "../../../fuzz/ledger_decide_fuzz.c"
#include "../../../fuzz/poker_cards_fuzz.c"
#include "../../../fuzz/poker_decide_fuzz.c"
#include "../../../fuzz/poker_snapshot_fuzz.c"
#include "../../../fuzz/snapshot_fuzz.c"
#include "../../../fuzz/wire_fuzz.c"

/* The largest corpus file replayed; libFuzzer's inputs are far smaller. */
#define CORPUS_FILE_BYTES_MAX (16 * 1024 * 1024)
/* Files per directory; a corpus is a handful of hand-made seeds and crashes. */
#define CORPUS_FILES_MAX 4096

typedef struct corpus_target {
    const char *name; /* the directory under fuzz/corpus/ */
    int (*run)(const uint8_t *data, size_t size);
} corpus_target;

static const corpus_target targets[] = {
    {"json", arb_fuzz_json},
    {"ledger_decide", arb_fuzz_ledger_decide},
    {"snapshot", arb_fuzz_snapshot},
    {"event_canon", arb_fuzz_event_canon},
    {"wire", arb_fuzz_wire},
    {"http", arb_fuzz_http},
    {"inventory_decide", arb_fuzz_inventory_decide},
    {"inventory_snapshot", arb_fuzz_inventory_snapshot},
    {"client", arb_fuzz_client},
    {"poker_decide", arb_fuzz_poker_decide},
    {"poker_snapshot", arb_fuzz_poker_snapshot},
    {"poker_cards", arb_fuzz_poker_cards},
};

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* fuzz/corpus/<name> under the working directory, else $ARB_SOURCE_DIR. */
static void corpus_dir(const char *name, char *path, size_t size)
{
    int n = snprintf(path, size, "fuzz/corpus/%s", name);
    assert_true(n > 0 && (size_t)n < size);
    if (is_dir(path))
        return;
    const char *source = getenv("ARB_SOURCE_DIR");
    if (source != NULL && source[0] != '\0') {
        n = snprintf(path, size, "%s/fuzz/corpus/%s", source, name);
        assert_true(n > 0 && (size_t)n < size);
        if (is_dir(path))
            return;
    }
    fail_msg("no corpus directory fuzz/corpus/%s (run from the repository root or set "
             "ARB_SOURCE_DIR)",
             name);
}

/* The whole file in a buffer of exactly its size (so ASan sees overreads). */
static uint8_t *read_file(const char *path, size_t *size_out)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    struct stat st;
    assert_int_equal(fstat(fileno(file), &st), 0);
    assert_true(st.st_size >= 0 && st.st_size <= CORPUS_FILE_BYTES_MAX);
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size > 0 ? size : 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, size, file), size);
    fclose(file);
    *size_out = size;
    return data;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files of dir, sorted so that the replay order is stable. */
static size_t list_files(const char *dir, char **names, size_t names_max)
{
    DIR *handle = opendir(dir);
    if (handle == NULL)
        fail_msg("cannot open %s: %s", dir, strerror(errno));
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir(handle)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        int n = snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        assert_true(n > 0 && (size_t)n < sizeof path);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        assert_true(count < names_max);
        names[count] = strdup(entry->d_name);
        assert_non_null(names[count]);
        count++;
    }
    closedir(handle);
    qsort(names, count, sizeof *names, compare_names);
    return count;
}

static void test_replay(void **state)
{
    const corpus_target *target = *state;
    char dir[PATH_MAX];
    corpus_dir(target->name, dir, sizeof dir);
    char **names = calloc(CORPUS_FILES_MAX, sizeof *names);
    assert_non_null(names);
    size_t count = list_files(dir, names, CORPUS_FILES_MAX);
    for (size_t i = 0; i < count; i++) {
        char path[PATH_MAX];
        int n = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        assert_true(n > 0 && (size_t)n < sizeof path);
        size_t size = 0;
        uint8_t *data = read_file(path, &size);
        /* A crash names the input: the assertion or sanitizer report follows. */
        fprintf(stderr, "replaying %s (%zu bytes)\n", path, size);
        assert_int_equal(target->run(data, size), 0);
        free(data);
        free(names[i]);
    }
    free(names);
    print_message("%s: replayed %zu files from %s\n", target->name, count, dir);
    assert_true(count >= 1);
}

int main(void)
{
    struct CMUnitTest tests[sizeof targets / sizeof targets[0]];
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        memset(&tests[i], 0, sizeof tests[i]);
        tests[i].name = targets[i].name;
        tests[i].test_func = test_replay;
        tests[i].initial_state = (void *)&targets[i];
    }
    return cmocka_run_group_tests_name("fuzz corpus", tests, NULL, NULL);
}
