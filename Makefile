# keel: `make` builds ./keel, `make run` starts the demo, `make test` runs every test,
# `make bench` compares keel with HAProxy and nginx (bench/run --quick), `make bench-micro` times
# the hot paths in isolation (bench/micro).
CC       ?= cc
OPT      ?= -O2 -g
WERROR   ?= -Werror
SAN      ?=
BUILD    ?= build/default
LLHTTP_SRC ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp

WARN     = -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter $(WERROR)
CPPFLAGS = -D_GNU_SOURCE -Iinclude -I$(LLHTTP_INC)
CFLAGS   = -std=c11 $(OPT) $(WARN) $(SAN) -pthread -fno-strict-aliasing
LDLIBS   = -lpcre2-8 -lsystemd -lssl -lcrypto -ljansson -pthread

SRCS     := $(sort $(wildcard src/core/*.c src/http/*.c src/process/*.c src/proxy/*.c src/cfg/*.c src/check/*.c src/admin/*.c src/sticky/*.c src/ssl/*.c src/demo/*.c))
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/%.o,$(filter-out src/main.c,$(SRCS)))
LLHTTP_OBJS := $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o
MAIN_OBJ := $(BUILD)/main.o
ORIGIN_OBJ := $(BUILD)/tools/origin-main.o
UNIT_SRCS := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

ifeq ($(BUILD),build/default)
KEEL_BIN := keel
else
KEEL_BIN := $(BUILD)/keel
endif
ORIGIN_BIN := $(BUILD)/keel-origin
# keelctl (tools/keelctl, docs/admin.md) is standalone; the default build also copies it to ./keelctl.
KEELCTL_BIN := $(BUILD)/keelctl

.PHONY: all build-deps deps run test test-unit test-layers test-system test-asan fuzz bench \
	bench-micro clean format

all: build-deps
	@$(MAKE) --no-print-directory $(KEEL_BIN) $(ORIGIN_BIN) $(KEELCTL_BIN)

# Missing Debian packages are installed (as root) or named with the apt-get line to run.
build-deps:
	@tools/deps.sh build

deps:
	@tools/deps.sh

$(BUILD)/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# llhttp is third-party code: built with its own (relaxed) warnings.
$(BUILD)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (llhttp)"
	@$(CC) -I$(LLHTTP_INC) $(OPT) $(SAN) -w -c $< -o $@

$(BUILD)/tools/origin-main.o: tools/origin/main.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libkeel.a: $(LIB_OBJS) $(LLHTTP_OBJS)
	@rm -f $@
	@ar rcs $@ $^

$(KEEL_BIN): $(MAIN_OBJ) $(BUILD)/libkeel.a
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(KEELCTL_BIN): tools/keelctl/main.c
	@mkdir -p $(dir $@)
	@echo "  CC+LD   $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $<
	@if [ "$(BUILD)" = build/default ]; then cp $@ keelctl; fi

$(ORIGIN_BIN): $(ORIGIN_OBJ) $(BUILD)/libkeel.a
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/libkeel.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libkeel.a $(LDLIBS)

run: all
	./keel --demo

test-unit: $(UNIT_BINS)
	@tests/unit/run.sh $(UNIT_BINS)

# The layers' include rule (docs/internals/architecture.md) and the check's own tests.
test-layers:
	@tools/check-layers
	@/usr/bin/python3 -m pytest -p no:cacheprovider -q tests/tools

test-system: all
	@KEEL=$(abspath $(KEEL_BIN)) KEEL_ORIGIN=$(abspath $(ORIGIN_BIN)) tests/system/run.sh

test: deps
	@$(MAKE) --no-print-directory all test-unit test-layers
	@$(MAKE) --no-print-directory test-system

test-asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g" \
		SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		all test-unit test-system

fuzz:
	@$(MAKE) --no-print-directory -C fuzz

# The benchmark (bench/run, see docs/benchmarks.md) in its quick form: keel, HAProxy and nginx,
# one round of short runs, about 1.5 minutes. BENCH_ARGS replaces --quick (e.g. BENCH_ARGS=
# for the full three rounds, or "--markdown docs/benchmarks.md").
BENCH_ARGS ?= --quick
bench: all
	@tools/deps.sh bench
	@bench/run --keel $(abspath $(KEEL_BIN)) $(BENCH_ARGS)

# Micro-benchmarks of the hot paths (bench/micro/micro.c, docs/benchmarks.md), about 10 s.
# MICRO_ARGS passes options (e.g. MICRO_ARGS="--quick --filter http/", or "--markdown").
bench-micro: build-deps
	@$(MAKE) --no-print-directory -C bench micro

format:
	clang-format -i $(SRCS) $(wildcard include/keel/*.h) $(UNIT_SRCS)

clean:
	rm -rf build keel keelctl

-include $(shell find build -name '*.d' 2>/dev/null)
