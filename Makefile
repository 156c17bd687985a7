# ember - build. `make run` tells a story with the bundled model; `make test`
# builds (plain and ASan+UBSan) and runs every test.
CC      ?= cc
BUILD   ?= build
SAN     ?=
PKGS    := libpcre2-8 libcjson libmicrohttpd sqlite3 libcrypto
CFLAGS  ?= -O2 -g
# -ffp-contract=off: numerics must not depend on whether the compiler fuses
# a*b+c; every FMA the kernels rely on is written as fmaf() or an intrinsic.
# `override`: a CFLAGS given on the command line (as test-asan does) replaces
# only the optimisation flags, not these.
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -pthread -fno-strict-aliasing -ffp-contract=off \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
ifeq ($(SAN),1)
override CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC  := $(wildcard src/base/*.c src/gguf/*.c src/tensor/*.c src/model/*.c src/text/*.c \
                       src/sample/*.c src/engine/*.c src/server/*.c src/guard/*.c)
CLI_SRC  := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB      := $(BUILD)/libember.a
EMBER    := $(BUILD)/ember
MODEL    := models/stories260K.gguf

.PHONY: all deps run test test-plain test-asan check clean fuzz-gguf bench fuzz-http loadtest
all: $(EMBER) $(TESTS)

deps:
	@./scripts/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(EMBER): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude -Isrc $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

run: deps
	@$(MAKE) --no-print-directory $(EMBER)
	$(EMBER) run -m $(MODEL) -p "Once upon a time" -n 200

# Every test binary plus the CLI checks, in the plain and the sanitizer build.
test: deps
	@$(MAKE) --no-print-directory test-plain
	@$(MAKE) --no-print-directory test-asan
	@echo "all test suites passed (plain and ASan+UBSan)"

test-plain: all
	@BUILD=$(BUILD) ./tests/run_all.sh $(BUILD)

test-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 CFLAGS="-O1 -g" all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./tests/run_all.sh build-asan

FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -ffp-contract=off -Iinclude -Isrc
fuzz-gguf: deps
	@mkdir -p build-fuzz
	clang $(FUZZ_FLAGS) -o build-fuzz/fuzz_gguf fuzz/fuzz_gguf.c src/gguf/*.c src/base/*.c
	@$(MAKE) --no-print-directory $(BUILD)/tests/test_gguf
	mkdir -p build-fuzz/corpus-gguf
	EMBER_WRITE_CORPUS=build-fuzz/corpus-gguf $(BUILD)/tests/test_gguf
	./build-fuzz/fuzz_gguf -max_total_time=$${FUZZ_SECONDS:-600} -max_len=65536 build-fuzz/corpus-gguf

# libFuzzer over the HTTP request layer of `ember serve` (fuzz/fuzz_http.c:
# http.c's request callback and routing, openai.c's validation, chat
# templates, tokenization), seeded by the harness's own example requests.
# Also fuzzes with a tiny random-weight model with the Llama 3 BPE vocabulary
# when ../shared/vocab has it.
FUZZ_HTTP_OBJ := $(patsubst %.c,build-fuzz/obj/%.o,$(filter-out src/server/http.c,$(LIB_SRC)))
FUZZ_VOCAB    := ../shared/vocab/ggml-vocab-llama-bpe.gguf
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -MMD -MP -c $< -o $@
# the kernels (never run by the harness; clang 14 lacks some CPU feature names) as in the plain build
build-fuzz/obj/src/tensor/%.o: src/tensor/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude -MMD -MP -c $< -o $@
build-fuzz/fuzz_http: fuzz/fuzz_http.c src/server/http.c src/server/server.h $(FUZZ_HTTP_OBJ)
	clang $(FUZZ_FLAGS) -Wall -Wextra $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -o $@ \
	    fuzz/fuzz_http.c $(FUZZ_HTTP_OBJ) $(LDLIBS)
fuzz-http: deps
	@$(MAKE) --no-print-directory build-fuzz/fuzz_http $(EMBER)
	@if [ -f $(FUZZ_VOCAB) ] && [ ! -f build-fuzz/tiny-bpe.gguf ]; then \
	    $(EMBER) mkmodel build-fuzz/tiny-bpe.gguf --shape tiny --layers 1 --vocab-from $(FUZZ_VOCAB) --quiet; fi
	rm -rf build-fuzz/seeds-http && mkdir -p build-fuzz/corpus-http
	EMBER_WRITE_CORPUS=build-fuzz/seeds-http ./build-fuzz/fuzz_http
	EMBER_FUZZ_MODEL2=$$([ -f build-fuzz/tiny-bpe.gguf ] && echo build-fuzz/tiny-bpe.gguf) \
	    ./build-fuzz/fuzz_http -max_total_time=$${FUZZ_SECONDS:-600} -max_len=16384 -timeout=30 \
	    -print_final_stats=1 build-fuzz/corpus-http build-fuzz/seeds-http

# Bounded loopback load test of `ember serve` (bench/loadtest.mjs, Node
# built-ins only; about 4 minutes): 32 streaming clients against the bundled
# model, then 1 vs 8 clients against a 1B-shaped Q4_0 model (made in
# bench/models if missing); writes the "Load test" section of BENCHMARKS.md.
# Not part of `make test`. LOAD_SECONDS, LOAD_CLIENTS, ... (see the script).
loadtest: deps
	@$(MAKE) --no-print-directory $(EMBER)
	@EMBER=$(EMBER) node bench/loadtest.mjs

# Speed against llama.cpp (node-llama-cpp's prebuilt CPU build, installed into
# bench/node_modules) on random-weight Llama-3.2-1B-shaped models generated
# into bench/models; writes BENCHMARKS.md. Not part of `make test`. Shorten
# with BENCH_REPS=1, BENCH_MODELS="q4_0", BENCH_PP=128, BENCH_BATCH=4, ...
# (see bench/run.mjs).
bench: deps
	@$(MAKE) --no-print-directory $(EMBER)
	@sh bench/install.sh
	@EMBER=$(EMBER) node bench/run.mjs

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
-include $(wildcard build-fuzz/obj/src/*/*.d)
