# arbiter - build, test, run.
#
# Entry points (each installs missing Debian packages first, through
# scripts/install-deps): all, run, test, test-asan, test-tsan, bench, fuzz,
# crash-test.
# Everything is built under $(BUILD) (build/ by default; build/asan and
# build/tsan for the sanitizer runs), so the variants never mix objects.

BUILD ?= build
CC ?= cc
PKGS := jansson libsodium sqlite3 libwebsockets
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARNINGS := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
            -Wwrite-strings -Wformat=2 -Wimplicit-fallthrough -Werror
OPT ?= -O2 -g
SAN ?=
CFLAGS_ALL := -std=c17 -D_GNU_SOURCE $(OPT) $(SAN) $(WARNINGS) -Iinclude -Isrc -Itests/support $(PKG_CFLAGS) -MMD -MP
LDFLAGS_ALL := $(SAN) $(PKG_LIBS) -lpthread -lm

LIB_SRC := $(sort $(wildcard src/*/*.c src/*/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB := $(BUILD)/libarbiter.a

TOOLS := $(patsubst tools/%.c,$(BUILD)/bin/%,$(wildcard tools/*.c))
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/bin/examples/%,$(wildcard examples/*.c))
TEST_SUPPORT_SRC := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(sort $(wildcard tests/unit/*/*_test.c tests/integration/*_test.c))
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

DEPS_OK = scripts/install-deps

.PHONY: all run test test-asan test-tsan bench fuzz format format-check clean \
        build build-tests check

all:
	@$(DEPS_OK) && $(MAKE) --no-print-directory build

run:
	@$(DEPS_OK) && $(MAKE) --no-print-directory build
	$(BUILD)/bin/arbiterd --data ./data --demo

test:
	@$(DEPS_OK) && $(MAKE) --no-print-directory check

test-asan:
	@$(DEPS_OK) && $(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" check

test-tsan:
	@$(DEPS_OK) && $(MAKE) --no-print-directory BUILD=build/tsan OPT="-O1 -g" \
	    SAN="-fsanitize=thread" check

bench:
	@$(DEPS_OK) && $(MAKE) --no-print-directory BUILD=$(BUILD) build-bench && bench/run $(BUILD)

fuzz:
	@$(DEPS_OK) && fuzz/run $(or $(FUZZ_SECONDS),60)

# The crash harness, long: CYCLES kill-restart-check cycles (default 1000),
# SEED to repeat a run's random choices.
.PHONY: crash-test
crash-test:
	@$(DEPS_OK) && $(MAKE) --no-print-directory build $(CRASH) && \
	    $(CRASH) --bin $(BUILD)/bin --cycles $(or $(CYCLES),1000) $(if $(SEED),--seed $(SEED))

build: $(LIB) $(TOOLS) $(EXAMPLES)

build-tests: build $(TESTS)

build-bench: build $(BENCH)

check: build-tests
	@tests/run $(BUILD)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $< $(LIB) $(LDFLAGS_ALL) -o $@

$(BUILD)/bin/examples/%: $(BUILD)/obj/examples/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $< $(LIB) $(LDFLAGS_ALL) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $< $(TEST_SUPPORT_OBJ) $(LIB) $(LDFLAGS_ALL) $(CMOCKA_LIBS) -o $@

# The crash harness (tests/crash/crash.c, docs/reliability.md): a program,
# not a cmocka test; tests/run runs it short, `make crash-test` long.
CRASH := $(BUILD)/tests/crash/crash
build-tests: $(CRASH)
$(CRASH): $(BUILD)/obj/tests/crash/crash.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $< $(LIB) $(LDFLAGS_ALL) -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $< $(LIB) $(LDFLAGS_ALL) -o $@

# The storage fault tests' LD_PRELOAD shim (tests/faults/faultfs.c), built
# without $(SAN): the test preloads it into arbiterd (under ASan ahead of its
# runtime; the TSan build skips the write faults).
FAULTFS := $(BUILD)/lib/faultfs.so
build-tests: $(FAULTFS)
$(FAULTFS): tests/faults/faultfs.c tests/faults/faultfs.h
	@mkdir -p $(@D)
	$(CC) -std=c17 -D_GNU_SOURCE $(OPT) $(WARNINGS) -fPIC -shared $< -o $@ -ldl

FORMAT_FILES = $(shell find include src tools tests bench fuzz examples -name '*.[ch]' 2>/dev/null)

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build

.SECONDARY:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
