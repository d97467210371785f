# code-router: build, test and run.  See README.md.
#
#   make          build build/ngx_http_code_router_module.so, build/code-router
#   make deps     apt-get install the Debian packages that are missing
#   make unit     the C unit tests (build/t/test-NAME, -asan), the helpers
#                 of the tests and the fuzzers, linked against the cores
#                 built once into build/{lib,asan,fuzz}/libcr.a
#   make test     deps + build + every test (prove -r t/)
#                 SANITIZE=1: against ASan+UBSan builds; VALGRIND=1: the
#                 nginx tests with nginx under valgrind
#   make run      deps + build + demo key and codes + nginx in the foreground
#                 (test and run build with JOBS jobs, default: the cores)
#
#   make NGINX_SRC=DIR       nginx and the module (dynamic, --with-compat)
#                            built from the nginx source tree in DIR, into
#                            build/nginx-VERSION/
#   make test NGINX=1.26     Debian 13's nginx source (cached in build/),
#                            built as above, and every nginx-facing test
#                            against it; plus the module compiled into a
#                            plain nginx (--add-module, no --with-compat)
#                            passing the basic tests

SHELL       := /bin/bash
NGX_SRC     ?= /usr/share/nginx/src
B           := build
SRC         := ngx_code_router

# The source tree is the list of sources (config reads the same folders):
#   core/   pure C cores, never an nginx header: in the module, the CLI,
#           the unit tests and the fuzzers
#   load/   pure C, the writer side (loader, store writer): not in the
#           read-only module
#   cli/    the CLI's commands
#   nginx/  the module's glue
# The cores are built once per flavour into a static library (below).
CORE_DIRS   := $(SRC)/core $(SRC)/load
CLI_SRCS    := $(wildcard $(SRC)/cli/*.c)
CORE_SRCS   := $(wildcard $(SRC)/core/*.c $(SRC)/load/*.c)
MODULE_SRCS := $(wildcard $(SRC)/nginx/*.c $(SRC)/core/*.c)
HDRS        := $(wildcard $(SRC)/*/*.h)
CR_INC      := $(addprefix -I,$(CORE_DIRS) $(SRC)/cli)
# nginx's configure reads the folders once: a file added or removed
# configures again (the list is rewritten only when it changes).
SRC_LIST    := $(B)/module-files
$(shell mkdir -p $(B); echo $(MODULE_SRCS) $(HDRS) | cmp -s - $(SRC_LIST) \
    || echo $(MODULE_SRCS) $(HDRS) > $(SRC_LIST))

# The builds the targets below start run this many jobs (the tests run
# one at a time).
JOBS        ?= $(shell nproc)
CC          ?= cc
OPT         ?= -O2 -g
HARDEN      := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
WARN        := -Wall -Wextra -Werror
PG_INC      := -I/usr/include/postgresql
CR_CFLAGS   := -std=c11 $(WARN) $(OPT) $(HARDEN) $(PG_INC)
CR_LDFLAGS  := -pie -Wl,-z,relro -Wl,-z,now
LIBS        := -llmdb -lsodium -lpq
SAN         := -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer

# Debian builds its nginx with these; the module is built the same way.
# nginx's own CFLAGS already carry -W (-Wextra) -Wall -Werror.
NGX_CC_OPT  := -g -O2 -fstack-protector-strong -Wformat \
               -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2 -Wextra
NGX_LD_OPT  := -Wl,-z,relro -Wl,-z,now -fPIC

MODULE      := $(B)/ngx_http_code_router_module.so
CLI         := $(B)/code-router
ASAN_MODULE := $(B)/asan/ngx_http_code_router_module.so
ASAN_CLI    := $(B)/asan/code-router
SAN_RT       = $(shell $(CC) -print-file-name=libasan.so) \
               $(shell $(CC) -print-file-name=libubsan.so)
# Every t/unit/test_NAME.c is a unit test (t/10-unit.t runs them all).
UNIT_NAMES  := $(patsubst t/unit/test_%.c,%,$(wildcard t/unit/test_*.c))
UNIT        := $(foreach u,$(UNIT_NAMES),$(B)/t/test-$(u) $(B)/t/test-$(u)-asan)
# Helpers of t/53-hostile.t: a store writer that bypasses the loader's
# rules, and a pipelining HTTP client for millions of requests.
HELPERS     := $(B)/t/raw-put $(B)/t/http-pipeline
# t/25-gs1-oracle.t: cr_gs1's verdicts, and the oracle it is compared with
# (digital-link.js from the npm registry, as package-lock.json locks it).
HELPERS     += $(B)/t/gs1-parse
# t/47-store-files.t: an LD_PRELOAD shim that damages a copy on its way.
HELPERS     += $(B)/t/corrupt-write.so
ORACLE      := t/oracle/node_modules/.package-lock.json

.PHONY: all check-deps deps unit fuzzers fuzz test run bench clean \
        nginx-test man

# nginx reads NGINX from its environment (sockets inherited in a binary
# upgrade): make test NGINX=1.26 must not hand it to the nginx it starts.
unexport NGINX

ifdef NGINX_SRC
# Another nginx: its version from its own header; nginx itself and the
# module built from DIR with Debian's configure flags (nginx-dev's
# conf_flags lists them; Debian 13 builds 1.26 with the same set), into
# build/nginx-VERSION/ (dynamic module) and build/nginx-VERSION-static/
# (the module compiled in with --add-module).  DIR is only read.
NGX_ALT_VER := $(shell sed -n 's/^\#define NGINX_VERSION  *"\(.*\)"/\1/p' \
                   $(NGINX_SRC)/src/core/nginx.h)
ifeq ($(NGX_ALT_VER),)
$(error NGINX_SRC=$(NGINX_SRC) is not an nginx source tree (no src/core/nginx.h))
endif
ALT         := $(B)/nginx-$(NGX_ALT_VER)
ALT_NGINX   := $(ALT)/nginx
ALT_MODULE  := $(ALT)/ngx_http_code_router_module.so
ALT_STATIC  := $(ALT)-static/nginx
NGX_DEB_FLAGS := --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf \
    --http-log-path=/var/log/nginx/access.log --error-log-path=stderr \
    --lock-path=/var/lock/nginx.lock --pid-path=/run/nginx.pid \
    --modules-path=/usr/lib/nginx/modules \
    --http-client-body-temp-path=/var/lib/nginx/body \
    --http-fastcgi-temp-path=/var/lib/nginx/fastcgi \
    --http-proxy-temp-path=/var/lib/nginx/proxy \
    --http-scgi-temp-path=/var/lib/nginx/scgi \
    --http-uwsgi-temp-path=/var/lib/nginx/uwsgi \
    --with-compat --with-debug --with-pcre-jit --with-http_ssl_module \
    --with-http_stub_status_module --with-http_realip_module \
    --with-http_auth_request_module --with-http_v2_module \
    --with-http_dav_module --with-http_slice_module --with-threads
# The static build is a plain --add-module on the stock source tree: no
# --with-compat, HTTP/2, DAV or realip, so the module must not use what
# only those define (r->headers_in.accept is NGX_HTTP_HEADERS').  Threads
# stay: the scan store's writer and the ledger run in thread pools.
NGX_PLAIN_FLAGS := --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf \
    --http-log-path=/var/log/nginx/access.log --error-log-path=stderr \
    --lock-path=/var/lock/nginx.lock --pid-path=/run/nginx.pid \
    --with-debug --with-threads

all: check-deps $(ALT_NGINX) $(ALT_MODULE) $(CLI)
else
all: check-deps $(MODULE) $(CLI)
endif

check-deps:
	@scripts/deps check

deps:
	@scripts/deps install

# Configure Debian's nginx tree with its own flags.  --builddir keeps every
# generated file under build/; the tree in $(NGX_SRC) is only read.
$(B)/nginx/Makefile: config $(SRC_LIST)
	@mkdir -p $(B)
	@echo "configuring nginx $(NGX_SRC) (log: $(B)/configure.log)"
	@cd $(NGX_SRC) && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt='$(NGX_CC_OPT)' --with-ld-opt='$(NGX_LD_OPT)' \
	    --add-dynamic-module=$(CURDIR) --builddir=$(CURDIR)/$(B)/nginx \
	    > $(CURDIR)/$(B)/configure.log 2>&1 \
	  || { tail -20 $(CURDIR)/$(B)/configure.log; exit 1; }

$(MODULE): $(B)/nginx/Makefile $(MODULE_SRCS) $(HDRS)
	$(MAKE) -s -f $(CURDIR)/$(B)/nginx/Makefile -C $(NGX_SRC) modules
	cp $(B)/nginx/ngx_http_code_router_module.so $@

ifdef NGINX_SRC
$(ALT)/Makefile: config $(SRC_LIST)
	@mkdir -p $(ALT)
	@echo "configuring nginx $(NGX_ALT_VER) in $(NGINX_SRC) (log: $(ALT)/configure.log)"
	@cd $(NGINX_SRC) && ./configure $(NGX_DEB_FLAGS) \
	    --with-cc-opt='$(NGX_CC_OPT)' --with-ld-opt='$(NGX_LD_OPT)' \
	    --add-dynamic-module=$(CURDIR) --builddir=$(CURDIR)/$(ALT) \
	    > $(CURDIR)/$(ALT)/configure.log 2>&1 \
	  || { tail -20 $(CURDIR)/$(ALT)/configure.log; exit 1; }

# nginx and the module in one make: both from the same configure.
$(ALT_NGINX) $(ALT_MODULE) &: $(ALT)/Makefile $(MODULE_SRCS) $(HDRS)
	$(MAKE) -s -f $(CURDIR)/$(ALT)/Makefile -C $(NGINX_SRC) binary modules

$(ALT)-static/Makefile: config $(SRC_LIST)
	@mkdir -p $(ALT)-static
	@echo "configuring static nginx $(NGX_ALT_VER) (log: $(ALT)-static/configure.log)"
	@cd $(NGINX_SRC) && ./configure $(NGX_PLAIN_FLAGS) \
	    --with-cc-opt='$(NGX_CC_OPT)' --with-ld-opt='$(NGX_LD_OPT)' \
	    --add-module=$(CURDIR) --builddir=$(CURDIR)/$(ALT)-static \
	    > $(CURDIR)/$(ALT)-static/configure.log 2>&1 \
	  || { tail -20 $(CURDIR)/$(ALT)-static/configure.log; exit 1; }

$(ALT_STATIC): $(ALT)-static/Makefile $(MODULE_SRCS) $(HDRS)
	$(MAKE) -s -f $(CURDIR)/$(ALT)-static/Makefile -C $(NGINX_SRC) binary
endif

# The cores, compiled once per flavour, each object with its header
# dependencies (-MMD -MP: editing one .c rebuilds one object):
#   build/lib/libcr.a    plain: the CLI, unit tests and helpers
#   build/asan/libcr.a   ASan+UBSan: the -asan unit tests and asan CLI
#   build/fuzz/libcr.a   clang, for libFuzzer: the fuzzers
# The nginx module is built by nginx's own build from config.
CORE_NAMES  := $(notdir $(CORE_SRCS:.c=))
CLI_NAMES   := $(notdir $(CLI_SRCS:.c=))
LIB         := $(B)/lib/libcr.a
ASAN_LIB    := $(B)/asan/libcr.a
FUZZ_LIB    := $(B)/fuzz/libcr.a
DEPFLAGS     = -MMD -MP -MF $@.d
ASAN_CFLAGS := -std=c11 $(WARN) -O1 -g $(SAN) $(PG_INC)
FUZZ_CFLAGS := -std=c11 $(WARN) -g -O1 -fno-sanitize-recover=all \
               -fsanitize=fuzzer-no-link,address,undefined $(PG_INC)

vpath %.c $(CORE_DIRS) $(SRC)/cli

$(B)/lib/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CR_CFLAGS) $(CR_INC) $(DEPFLAGS) -c -o $@ $<

$(B)/asan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) $(CR_INC) $(DEPFLAGS) -c -o $@ $<

$(B)/fuzz/%.o: %.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $(CR_INC) $(DEPFLAGS) -c -o $@ $<

# Objects and libraries are kept (not intermediate files): the next build
# reuses them.
.SECONDARY: $(foreach d,lib asan fuzz,$(patsubst %,$(B)/$(d)/%.o,\
                $(CORE_NAMES) $(CLI_NAMES))) $(LIB) $(ASAN_LIB) $(FUZZ_LIB)

# rm first: a core file removed from the tree leaves no stale member.
$(B)/%/libcr.a: $(foreach c,$(CORE_NAMES),$(B)/%/$(c).o)
	rm -f $@
	ar rcs $@ $^

$(CLI): $(foreach c,$(CLI_NAMES),$(B)/lib/$(c).o) $(LIB)
	$(CC) $(CR_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/t/test-%: t/unit/test_%.c $(LIB)
	@mkdir -p $(B)/t
	$(CC) $(CR_CFLAGS) $(DEPFLAGS) $(CR_INC) $(CR_LDFLAGS) -o $@ $< $(LIB) \
	    $(LIBS)

$(B)/t/raw-put: t/bin/raw_put.c $(LIB)
	@mkdir -p $(B)/t
	$(CC) $(CR_CFLAGS) $(DEPFLAGS) $(CR_INC) $(CR_LDFLAGS) -o $@ $< $(LIB) \
	    $(LIBS)

$(B)/t/gs1-parse: t/bin/gs1_parse.c $(LIB)
	@mkdir -p $(B)/t
	$(CC) $(CR_CFLAGS) $(DEPFLAGS) $(CR_INC) $(CR_LDFLAGS) -o $@ $< $(LIB) \
	    $(LIBS)

# npm ci installs exactly what the lock file names, into a git-ignored
# node_modules; it writes .package-lock.json last.
$(ORACLE): t/oracle/package.json t/oracle/package-lock.json
	cd t/oracle && npm ci --no-audit --no-fund --loglevel=error

$(B)/t/corrupt-write.so: t/bin/corrupt_write.c
	@mkdir -p $(B)/t
	$(CC) -std=c11 $(WARN) $(OPT) -fPIC -shared -o $@ $< -ldl

$(B)/t/http-pipeline: t/bin/http_pipeline.c
	@mkdir -p $(B)/t
	$(CC) $(CR_CFLAGS) $(DEPFLAGS) $(CR_LDFLAGS) -o $@ $<

# The unit tests also run under AddressSanitizer and UBSan, always.
$(B)/t/test-%-asan: t/unit/test_%.c $(ASAN_LIB)
	@mkdir -p $(B)/t
	$(CC) $(ASAN_CFLAGS) $(DEPFLAGS) $(CR_INC) -o $@ $< $(ASAN_LIB) $(LIBS)

# make test SANITIZE=1: the module and the CLI built with ASan+UBSan, and
# every test run against them (the runtime preloaded into Debian's nginx).
$(B)/nginx-asan/Makefile: config $(SRC_LIST)
	@mkdir -p $(B)
	@echo "configuring nginx for the sanitized module (log: $(B)/configure-asan.log)"
	@cd $(NGX_SRC) && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt='-g -O1 -fPIC $(SAN)' --with-ld-opt='-fPIC $(SAN)' \
	    --add-dynamic-module=$(CURDIR) --builddir=$(CURDIR)/$(B)/nginx-asan \
	    > $(CURDIR)/$(B)/configure-asan.log 2>&1 \
	  || { tail -20 $(CURDIR)/$(B)/configure-asan.log; exit 1; }

$(ASAN_MODULE): $(B)/nginx-asan/Makefile $(MODULE_SRCS) $(HDRS)
	$(MAKE) -s -f $(CURDIR)/$(B)/nginx-asan/Makefile -C $(NGX_SRC) modules
	@mkdir -p $(B)/asan
	cp $(B)/nginx-asan/ngx_http_code_router_module.so $@

$(ASAN_CLI): $(foreach c,$(CLI_NAMES),$(B)/asan/$(c).o) $(ASAN_LIB)
	$(CC) $(SAN) -o $@ $^ $(LIBS)

unit: $(UNIT) $(HELPERS) $(ORACLE) fuzzers

# libFuzzer targets over the pure C cores (clang).  make test runs each a
# few seconds (t/15-fuzz.t); make fuzz runs each FUZZ_SECONDS (default 60)
# and keeps what it found in build/fuzz/corpus-NAME.
FUZZ_NAMES  := $(patsubst t/fuzz/fuzz_%.c,%,$(wildcard t/fuzz/fuzz_*.c))
FUZZ_BINS   := $(foreach f,$(FUZZ_NAMES),$(B)/fuzz/fuzz-$(f))
FUZZ_SECONDS ?= 60

$(B)/fuzz/fuzz-%: t/fuzz/fuzz_%.c $(FUZZ_LIB)
	@mkdir -p $(B)/fuzz
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $(DEPFLAGS) $(CR_INC) -o $@ $< \
	    $(FUZZ_LIB) $(LIBS)

fuzzers: $(FUZZ_BINS)

fuzz: deps
	$(MAKE) fuzzers
	@for f in $(FUZZ_NAMES); do \
	    mkdir -p $(B)/fuzz/corpus-$$f $(B)/fuzz/crash-$$f; \
	    echo "fuzzing $$f for $(FUZZ_SECONDS) s"; \
	    $(B)/fuzz/fuzz-$$f -max_total_time=$(FUZZ_SECONDS) \
	        -print_final_stats=1 -artifact_prefix=$(B)/fuzz/crash-$$f/ \
	        $(B)/fuzz/corpus-$$f t/fuzz/corpus/$$f > $(B)/fuzz/$$f.log 2>&1 \
	      || { tail -40 $(B)/fuzz/$$f.log; exit 1; }; \
	    grep "stat::number_of_executed_units" $(B)/fuzz/$$f.log; \
	done

# t/53's random and mutated codes: 1,000,000 each in the plain suite; the
# suites that run the same tests again (sanitized, another nginx) send
# fewer, enough for what they add (a sanitizer report, another version's
# parser), since the fuzzers run sanitized over the same cores anyway.
HOSTILE_N_AGAIN ?= 200000

ifeq ($(SANITIZE),1)
# Every test that runs the module or the CLI.  Not t/10 and t/15: the unit
# tests and fuzzers are sanitized builds already (the plain suite runs
# them); nor t/80: the packages it installs hold the plain build.
SAN_TESTS := $(filter-out t/10-% t/15-% t/80-%,$(wildcard t/*.t))
test: deps
	$(MAKE) -j$(JOBS) all unit $(ASAN_MODULE) $(ASAN_CLI)
	CR_MODULE=$(CURDIR)/$(ASAN_MODULE) CR_CLI=$(CURDIR)/$(ASAN_CLI) \
	  CR_NGINX_PRELOAD="$(SAN_RT)" ASAN_OPTIONS=detect_leaks=0 \
	  CR_HOSTILE_N=$(HOSTILE_N_AGAIN) prove --timer $(SAN_TESTS)
else ifdef NGINX
# make test NGINX=1.26: Debian 13's nginx source from Debian's archive
# (scripts/nginx-source: cached in build/nginx-src, checked against the
# signed index), then `make NGINX_SRC=...` and every test that starts
# nginx against that build; and the module compiled into nginx
# (--add-module) passes the module's basic test.
NGINX_TESTS := $(shell grep -l 'CodeRouter::Test::Nginx' t/*.t)
test: deps
	$(MAKE) -j$(JOBS) all unit
	@src=$$(scripts/nginx-source $(NGINX) $(B)/nginx-src) \
	  && $(MAKE) -j$(JOBS) NGINX_SRC=$$src nginx-test
else ifeq ($(VALGRIND),1)
# make test VALGRIND=1: the tests that start nginx, with nginx (master and
# workers) under valgrind; a test fails on a report with a frame of ours.
# CR_VALGRIND_KEEP=DIR keeps the logs.  Slow: about ten minutes.
VALGRIND_TESTS := $(shell grep -l 'CodeRouter::Test::Nginx' t/*.t)
test: deps
	$(MAKE) all
	CR_VALGRIND=1 prove --timer $(VALGRIND_TESTS)
else
test: deps
	$(MAKE) -j$(JOBS) all unit
	prove --timer -r t/
endif

ifdef NGINX_SRC
nginx-test: all $(ALT_STATIC)
	$(ALT_NGINX) -V 2>&1 | head -1
	CR_NGINX=$(CURDIR)/$(ALT_NGINX) CR_MODULE=$(CURDIR)/$(ALT_MODULE) \
	  CR_HOSTILE_N=$(HOSTILE_N_AGAIN) prove --timer $(NGINX_TESTS)
	CR_NGINX=$(CURDIR)/$(ALT_STATIC) CR_MODULE=static \
	  prove t/30-module.t t/50-router.t
endif

run: deps
	$(MAKE) -j$(JOBS) all
	scripts/demo-run

# Benchmarks (not tests): writes docs/performance.md.  QUICK=1 for a look.
bench: deps
	@scripts/deps install bench
	$(MAKE) all
	QUICK=$(QUICK) ONLY=$(ONLY) scripts/bench

# The man pages, from man/*.1.in and the CLI's help texts (the one source
# of every command's synopsis and options), and t/README.md's list of the
# tests, from their opening comments: run after editing any of them;
# t/27-man.t fails while man/ or the list is stale.
man: $(CLI)
	scripts/man $(CLI) man
	scripts/test-list

clean:
	rm -rf $(B)

# Header dependencies of every object and binary above (-MMD -MP).
-include $(shell find $(B)/lib $(B)/asan $(B)/fuzz $(B)/t -name '*.d' \
                 2>/dev/null)

# make deb: the Debian packages libnginx-mod-http-code-router and
# code-router in build/deb/ (dpkg-buildpackage from a copy of the tree in
# build/pkg/, then lintian).  As root it installs what the build needs.
# make deb DIST=trixie: the same for Debian 13, built in a chroot of it
# (debootstrap, cached in build/chroot/), into build/deb/trixie/.
.PHONY: deb
deb:
	scripts/deb $(DIST)
