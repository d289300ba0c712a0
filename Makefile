# quotatop: see README.md. `make demo` and `make test` are the two commands a new
# user needs; both install missing Debian packages first (scripts/deps.sh).

CC      ?= gcc
BUILD   ?= build
PREFIX  ?= /usr/local
PKGS    := ncursesw libcurl libcjson libmicrohttpd hiredis sqlite3

PC_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PC_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Iinclude $(PC_CFLAGS) \
           -DQT_DATADIR='"$(PREFIX)/share/quotatop"' $(EXTRA_CFLAGS)
LDFLAGS += $(EXTRA_LDFLAGS)
LDLIBS  += $(PC_LIBS) -lpthread -lm

# Sources are found by folder: src/<layer>/*.c (see docs/ARCHITECTURE.md).
LIB_SRC  := $(filter-out src/cli/main.c,$(wildcard src/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
# The Redis backend's Lua scripts are compiled in (each src/backend/lua/*.lua
# becomes one C string, common.lua prepended): the binary needs no files at run time.
LUA_SRC  := $(wildcard src/backend/lua/*.lua)
LIB_OBJ  += $(BUILD)/gen/backend_lua.o
UNIT_SRC := $(wildcard tests/unit/*.c)
BENCH_SRC:= $(wildcard bench/*.c)

.PHONY: all deps demo test test-unit test-integration test-fuzz fuzz fuzz-build sanitize tsan valgrind bench install clean

all: $(BUILD)/quotatop

deps:
	@scripts/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/gen/backend_lua.c: $(LUA_SRC) scripts/embed_lua.sh
	@mkdir -p $(dir $@)
	scripts/embed_lua.sh src/backend/lua > $@

$(BUILD)/gen/backend_lua.o: $(BUILD)/gen/backend_lua.c
	$(CC) $(CFLAGS) -Isrc/backend -c $< -o $@

$(BUILD)/libquotatop.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/quotatop: $(BUILD)/src/cli/main.o $(BUILD)/libquotatop.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# All unit suites in one Criterion binary (one synthesis line) ...
$(BUILD)/unit_tests: $(UNIT_SRC:%.c=$(BUILD)/%.o) $(BUILD)/libquotatop.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

# ... and one binary per suite for quick iteration: make build/tests/test_limiter
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libquotatop.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libquotatop.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

demo: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/quotatop demo

test: deps
	@$(MAKE) --no-print-directory all $(BUILD)/unit_tests
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-fuzz
	@$(MAKE) --no-print-directory test-integration

test-unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests --jobs 2 $(UNIT_ARGS)

test-integration: $(BUILD)/quotatop
	tests/integration/run.sh $(BUILD)/quotatop

# ASan + UBSan over every test; ThreadSanitizer over the threaded ones
# (unit tests named threads_* and the integration tests that run workers).
sanitize: deps
	@LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp" \
	 UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
	 $(MAKE) --no-print-directory BUILD=build-asan \
	  EXTRA_CFLAGS="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" test-unit test-integration

# libcriterion cannot start under ThreadSanitizer (Criterion issue #274), so
# the unit files holding threads_* tests are built against a small stand-in
# (tests/tsan/criterion/criterion.h) and run in-process; then the engine's
# integration tests run against a ThreadSanitizer build of the binary (a race
# makes it exit 66, which fails them).
TSAN_FLAGS := -O1 -g -fsanitize=thread
TSAN_UNIT  := $(shell grep -l 'threads_' tests/unit/*.c 2>/dev/null)
tsan: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan EXTRA_CFLAGS="$(TSAN_FLAGS)" \
	  EXTRA_LDFLAGS="-fsanitize=thread" build-tsan/libquotatop.a build-tsan/quotatop
	@set -e; for t in $(TSAN_UNIT); do \
	  b=build-tsan/tsan_$$(basename $$t .c); \
	  $(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra $(TSAN_FLAGS) -Itests/tsan -Iinclude $(PC_CFLAGS) \
	    $$t build-tsan/libquotatop.a -o $$b $(LDLIBS) -fsanitize=thread; \
	  echo "== $$b"; TSAN_OPTIONS="halt_on_error=1" $$b threads_; done
	QT_INTEGRATION_FILTER=run_ tests/integration/run.sh build-tsan/quotatop

# libFuzzer targets (tests/fuzz/fuzz_*.c, see fuzz_common.h): the library
# is compiled again with clang into build-fuzz/ (ASan + UBSan + coverage).
# test-fuzz runs each target once over its seed corpus (tests/fuzz/corpus/
# NAME/), so a crash found once stays fixed; fuzz explores for FUZZ_SECONDS
# per target, writing new inputs to build-fuzz/corpus/NAME/ and crashes to
# build-fuzz/artifacts/.
FUZZ_CC    ?= clang
FUZZ_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_SECONDS ?= 60
fuzz-build:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=$(FUZZ_CC) \
	  EXTRA_CFLAGS="$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link" build-fuzz/libquotatop.a
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) build-fuzz/libquotatop.a
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Iinclude $(PC_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer \
	  $< build-fuzz/libquotatop.a -o $@ $(LDLIBS)
test-fuzz: fuzz-build
	@set -e; for b in $(FUZZ_BIN); do n=$$(basename $$b | sed 's/^fuzz_//'); \
	  mkdir -p tests/fuzz/corpus/$$n; \
	  echo "== $$b over tests/fuzz/corpus/$$n ($$(ls tests/fuzz/corpus/$$n | wc -l) inputs)"; \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $$b -runs=0 tests/fuzz/corpus/$$n >build-fuzz/$$n.log 2>&1 \
	    || { tail -40 build-fuzz/$$n.log; exit 1; }; done
fuzz: fuzz-build
	@set -e; mkdir -p build-fuzz/artifacts; for b in $(FUZZ_BIN); do n=$$(basename $$b | sed 's/^fuzz_//'); \
	  mkdir -p build-fuzz/corpus/$$n tests/fuzz/corpus/$$n; echo "== $$b for $(FUZZ_SECONDS) s"; \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $$b -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -max_len=65536 -timeout=10 -rss_limit_mb=1024 -artifact_prefix=build-fuzz/artifacts/$$n- \
	    build-fuzz/corpus/$$n tests/fuzz/corpus/$$n 2>&1 | tee build-fuzz/$$n.fuzz.log | grep -E 'stat::|ERROR|SUMMARY|Test unit written' || true; done

# Valgrind memcheck over a 20 s demo and the integration suite's run tests:
# tests/valgrind/qt_valgrind.sh stands in for the binary (QT_BIN) and runs
# an -O1 build (build-vg/) under memcheck, one log per process in
# build-vg/logs/; tests/valgrind/report.sh sums them and fails on any leak
# or invalid access. The run tests' own timing checks may fail under
# valgrind's slowdown (their output is in build-vg/logs/run.out): the logs
# are the verdict. About 4 minutes: not part of `make test`.
VG_ENV = QT_VG_REAL=$(CURDIR)/build-vg/quotatop
valgrind: deps
	@$(MAKE) --no-print-directory BUILD=build-vg EXTRA_CFLAGS="-O1 -fno-omit-frame-pointer" build-vg/quotatop
	@rm -rf build-vg/logs && mkdir -p build-vg/logs/demo build-vg/logs/run
	@echo "== demo --headless --duration 20 under valgrind"
	@$(VG_ENV) QT_VG_LOGDIR=$(CURDIR)/build-vg/logs/demo tests/valgrind/qt_valgrind.sh demo --headless \
	  --duration 20 >/dev/null 2>build-vg/logs/demo.err || true
	@echo "== tests/integration/test_run_*.sh under valgrind (log: build-vg/logs/run.out)"
	@$(VG_ENV) QT_VG_LOGDIR=$(CURDIR)/build-vg/logs/run QT_INTEGRATION_FILTER=run_ \
	  tests/integration/run.sh tests/valgrind/qt_valgrind.sh >build-vg/logs/run.out 2>&1 || true
	@tail -1 build-vg/logs/run.out
	@r=0; for d in demo run; do echo "== valgrind, $$d:"; tests/valgrind/report.sh build-vg/logs/$$d || r=1; done; exit $$r

# Every bench, then one table of figures (ratios against references measured
# in the same run: bench/bench.sh). Not part of `make test`; about 3 minutes.
bench: $(BENCH_SRC:%.c=$(BUILD)/%) $(BUILD)/quotatop
	@bench/bench.sh $(BUILD)

# The themes directory is compiled in: rebuild when PREFIX is not the default.
install:
	@rm -rf $(BUILD)-install
	@$(MAKE) --no-print-directory -s BUILD=$(BUILD)-install PREFIX=$(PREFIX) $(BUILD)-install/quotatop
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/quotatop/themes
	install -m 755 $(BUILD)-install/quotatop $(DESTDIR)$(PREFIX)/bin/quotatop
	install -m 644 themes/*.theme $(DESTDIR)$(PREFIX)/share/quotatop/themes/

clean:
	rm -rf build build-install build-asan build-tsan build-fuzz build-vg

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
