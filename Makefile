# SPDX-License-Identifier: Apache-2.0
# flip-node - build, test, install, demo, bench.
#
# `make` installs the missing Debian packages the node needs to build and run
# (packages.list), then builds every program into build/bin/ with warnings as errors.
# `make test`, `make demo`, `make bench` and `make deb` also install what they add
# (packages-test.list). The compiler flags come from pkg-config when the first
# compile needs them, after the packages are in (not when this file is read). `make test` builds a second tree,
# build/test/, with the crash points of FLIP_CRASH_AT compiled in (test builds only),
# and runs every unit and integration test. Nothing is written outside build/
# except by `make install`.
#
# `make clean; make SAN=1 test` builds both trees with ASan and UBSan and runs the
# whole suite under them (the same build/ directory: clean first, and after).
# LeakSanitizer is on; ASAN_OPTIONS, UBSAN_OPTIONS and LSAN_OPTIONS reach the
# programs. Under SAN=1 the memory-size checks and the valgrind runs are skipped.

PREFIX  ?= /usr/local
DESTDIR ?=
# where `make install` puts the man pages and the systemd units; the Debian package
# (debian/rules) sets UNITDIR=/lib/systemd/system, where Debian 12's systemd looks
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
CC      ?= cc
CXX     ?= c++
PYTHON  ?= /usr/bin/python3
VERSION := $(shell cat VERSION)
SAN     ?=

PKGS     := libcurl jansson openssl libpq libprotobuf-c libmicrohttpd libarchive
# Computed once, the first time a recipe expands them (never at parse time: on a
# fresh machine `deps` has not installed the headers yet when this file is read,
# and a pkg-config that fails then would drop every flag). A pkg-config that fails
# stops the build with a message rather than compiling without the flags.
pkg_config = $(shell pkg-config $(1) $(PKGS) 2>/dev/null || echo PKG-CONFIG-FAILED)
pkg_check  = $(if $(filter PKG-CONFIG-FAILED,$(1)),$(error pkg-config cannot find all of \
  $(PKGS): run `make deps` (it installs packages.list)))
PKG_CFLAGS = $(eval PKG_CFLAGS := $(call pkg_config,--cflags))$(call pkg_check,$(PKG_CFLAGS))$(PKG_CFLAGS)
# libpg_query ships no .pc file; the C++ shims (toml11, dcmtk) need libstdc++
# dcmtk is named by hand: Debian 12's dcmtk.pc requires sndfile.pc, which is not there,
# and a failing pkg-config would silently drop every other library's flags too
DCMTK_LIBS := -ldcmnet -ldcmdata -loflog -lofstd
PKG_LIBS   = $(eval PKG_LIBS := $(call pkg_config,--libs) -lpg_query $(DCMTK_LIBS) -lstdc++)$(call pkg_check,$(PKG_LIBS))$(PKG_LIBS)

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 \
           -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wpointer-arith \
           -Wcast-qual -Wwrite-strings -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c17 $(WARN) -D_GNU_SOURCE -DFLIP_VERSION='"$(VERSION)"' \
           -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE -I. $(PKG_CFLAGS)
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
           -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE -I. $(PKG_CFLAGS)
LDFLAGS += -pie -Wl,-z,relro,-z,now -Wl,--as-needed
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -U_FORTIFY_SOURCE
CXXFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -U_FORTIFY_SOURCE
LDFLAGS += -fsanitize=address,undefined
endif

# the layers (README "Layout"; tools/lint-tree checks them): lib/ under jobs/ under
# bin/<program>/, one folder per program: its main.c and the logic only it uses
PROGRAMS := $(patsubst bin/%/main.c,%,$(wildcard bin/*/main.c))
PROG_SRC := $(filter-out %/main.c,$(wildcard bin/*/*.c))
# everything but the mains goes into libflip.a: a program links what it calls, and
# the unit tests can reach any module
LIB_SRC  := $(wildcard lib/*.c) $(wildcard jobs/*.c) $(PROG_SRC)
# the only C++: small extern "C" shims over C++ libraries (docs/design/style.md)
LIB_CXX  := $(wildcard lib/*.cc)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
# one page per program (section 8) and the overview flip-node.7
MANPAGES := $(wildcard docs/man/*.7 docs/man/*.8)

# release tree
OBJ      := $(patsubst %.c,build/obj/%.o,$(LIB_SRC)) $(patsubst %.cc,build/obj/%.o,$(LIB_CXX))
BINS     := $(addprefix build/bin/,$(PROGRAMS))
# test tree: same sources, crash points compiled in
TOBJ     := $(patsubst %.c,build/test/obj/%.o,$(LIB_SRC)) $(patsubst %.cc,build/test/obj/%.o,$(LIB_CXX))
TBINS    := $(addprefix build/test/bin/,$(PROGRAMS))
MAINS    := $(patsubst %,build/obj/bin/%/main.o,$(PROGRAMS)) $(patsubst %,build/test/obj/bin/%/main.o,$(PROGRAMS))
UNITS    := $(patsubst tests/unit/%.c,build/test/unit/%,$(UNIT_SRC))

.PHONY: all deps deps-test build test unit integration demo bench install uninstall deb provision clean lint fuzz
all: deps build
build: $(BINS)

# deps - apt-get install whatever packages.list names and dpkg does not have: what
# the node needs to build and run, nothing else (`make`, `make build`, `make install`).
# deps-test - the same for packages-test.list as well: what the tests, the demo, the
# benchmarks and the package build add (PostgreSQL, Orthanc, sshd, lintian, clang...,
# none of which belongs on a trust's host). Both are no-ops when all are present.
# Every compile waits for deps (order-only, so an installed package rebuilds nothing);
# debian/rules sets FLIP_DEPS= (Build-Depends has installed them).
FLIP_DEPS ?= deps
deps_install = @missing=$$(sed -e 's/\#.*//' $(1) | awk 'NF{print $$1}' | while read -r p; do \
	    dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed' || echo "$$p"; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages ($(1)):" $$missing; \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; \
	fi
deps:
	$(call deps_install,packages.list)
deps-test: deps
	$(call deps_install,packages-test.list)
$(OBJ) $(TOBJ) $(MAINS) $(BINS) $(TBINS): | $(FLIP_DEPS)
$(UNITS): | $(if $(FLIP_DEPS),deps-test)

build/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<
build/test/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DFLIP_TEST_BUILD -MMD -MP -c -o $@ $<

build/obj/%.o: %.cc
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -MMD -MP -c -o $@ $<
build/test/obj/%.o: %.cc
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -DFLIP_TEST_BUILD -MMD -MP -c -o $@ $<

build/libflip.a: $(OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^
build/test/libflip.a: $(TOBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

build/bin/%: build/obj/bin/%/main.o build/libflip.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< build/libflip.a $(PKG_LIBS)
build/test/bin/%: build/test/obj/bin/%/main.o build/test/libflip.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< build/test/libflip.a $(PKG_LIBS)
build/test/unit/%: tests/unit/%.c build/test/libflip.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DFLIP_TEST_BUILD $(LDFLAGS) -o $@ $< build/test/libflip.a $(PKG_LIBS) -lcmocka

# test - every unit test, then every integration test, one summary line at the end.
test: deps-test $(BINS) $(TBINS) $(UNITS)
	$(MAKE) --no-print-directory fuzz-build
	FLIP_SAN=$(SAN) $(PYTHON) tests/run.py --units build/test/unit --bin build/test/bin --release-bin build/bin --fuzz build/fuzz

unit: deps-test $(UNITS)
	$(PYTHON) tests/run.py --units build/test/unit --only-units

demo: deps-test $(BINS)
	$(PYTHON) tests/demo.py --bin build/bin

bench: deps-test $(BINS)
	$(PYTHON) tests/bench.py --bin build/bin --out docs/benchmarks.md

install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/flip $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	# the units name /usr/local/bin; point them at this PREFIX
	for u in timers/*.service timers/*.timer timers/*.path timers/*.socket; do \
	    sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
	# man pages, compressed as Debian ships them (-n: no name or time stamp inside)
	install -d $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8
	for m in $(MANPAGES); do \
	    gzip -9n -c $$m > $(DESTDIR)$(MANDIR)/man$${m##*.}/$$(basename $$m).gz; \
	    chmod 0644 $(DESTDIR)$(MANDIR)/man$${m##*.}/$$(basename $$m).gz; done
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' timers/flip.cron > $(DESTDIR)/etc/flip/flip.cron.example
	install -m 0600 docs/flip.env.example $(DESTDIR)/etc/flip/flip.env.example

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(PROGRAMS))
	rm -f $(DESTDIR)/etc/flip/flip.cron.example $(DESTDIR)/etc/flip/flip.env.example
	for u in timers/*.service timers/*.timer timers/*.path timers/*.socket; do \
	    rm -f $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
	for m in $(MANPAGES); do rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$$(basename $$m).gz; done

# deb - the Debian package (debian/, debhelper), built by dpkg-buildpackage in a clean
# copy of the tree under build/deb/: the files git knows (tracked and new, not
# ignored) as they are in the working tree, which the build never touches. The
# .deb lands in build/deb/; lintian's verdict is in build/deb/lintian.log and any
# error or warning fails the target (overrides, each with its reason, are in
# debian/flip-node.lintian-overrides).
DEB_SRC := build/deb/flip-node-$(VERSION)
deb: deps-test
	@v=$$(dpkg-parsechangelog -S Version); [ "$$v" = "$(VERSION)" ] || { \
	    echo "debian/changelog says $$v, VERSION says $(VERSION): add a changelog entry"; exit 1; }
	rm -rf build/deb
	mkdir -p $(DEB_SRC)
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	    git ls-files -z --cached --others --exclude-standard | \
	    xargs -0 -r sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done; true' sh | \
	    tar --null -T - -cf - | tar -xf - -C $(DEB_SRC); \
	else \
	    tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C $(DEB_SRC); \
	fi
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    DEB_BUILD_OPTIONS="parallel=$$(nproc) $$DEB_BUILD_OPTIONS" dpkg-buildpackage -b -us -uc
	lintian --fail-on error,warning build/deb/flip-node_$(VERSION)_*.changes >build/deb/lintian.log 2>&1; \
	    rc=$$?; cat build/deb/lintian.log; exit $$rc
	@ls build/deb/flip-node_$(VERSION)_*.deb

# provision - from the operator's workstation, install and start the package on a
# trust's host over SSH (tools/provision.sh, whose header is the contract):
#   make provision TRUST_HOST=host KIT=file [SSH_USER=user] [SSH_PORT=port] [SSH_KEY=file]
# The script reads its settings from the environment, where make puts the
# variables given on its command line. They and the kit's mode are checked before
# the package is built.
provision:
	@tools/provision.sh --check >/dev/null
	$(MAKE) --no-print-directory deb
	DEB=build/deb/flip-node_$(VERSION)_$$(dpkg --print-architecture).deb tools/provision.sh

# lint - cppcheck on the project's own C (no clang-format gate yet: the tree has no
# agreed .clang-format, and a formatter that rewrites the code is a change of its own)
# lint - the layout rules (tools/lint-tree: layers, SYNOPSIS, file size), then cppcheck
lint:
	$(PYTHON) tools/lint-tree
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --suppress=missingIncludeSystem -D_GNU_SOURCE -I. lib jobs bin

clean:
	rm -rf build

# fuzz - libFuzzer targets (tests/fuzz/fuzz_*.c), clang with ASan and UBSan, built into
# build/fuzz/ from the sources each target lists (FUZZ_SRC_<name>; all of lib/ and
# jobs/ when it lists none). Each runs FUZZ_SECONDS on build/fuzz/corpus-<name>, a
# copy of tests/fuzz/corpus/<name> that keeps what earlier runs found; crashes go
# to build/fuzz/artifacts-<name>/. fuzz-smoke is the 10 s run for `make test`.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_CXX     ?= clang++
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer -D_GNU_SOURCE -DFLIP_TEST_BUILD -I.
FUZZ_CFLAGS  = -std=c17 $(WARN) $(FUZZ_FLAGS) -DFLIP_VERSION='"$(VERSION)"' $(PKG_CFLAGS)
FUZZ_CXXFLAGS = -std=c++17 -Wall -Wextra -Werror -Wno-unused-parameter $(FUZZ_FLAGS) $(PKG_CFLAGS)
FUZZ_RUN     := -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
FUZZ_SRC_envelope := lib/envelope.c lib/b64.c lib/err.c
FUZZ_SRC_payload  := lib/task.c lib/b64.c lib/err.c
FUZZ_SRC_config   := lib/config.c lib/config_file.c lib/config_value.c lib/config_public.c \
                     lib/b64.c lib/log.c lib/task.c lib/err.c
FUZZ_SRC_sqlguard := jobs/sqlguard.c jobs/sqlguard_names.c
FUZZ_SRC_sqlattack := jobs/sqlguard.c jobs/sqlguard_names.c jobs/sqlresolve.c
FUZZ_SRC_deid     := lib/deid.c lib/dicom.cc lib/dicom_dataset.cc lib/err.c lib/log.c
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(addprefix build/fuzz/fuzz_,$(FUZZ_NAMES))

.PHONY: fuzz-build fuzz-smoke
fuzz-build: deps-test $(FUZZ_BINS)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<
build/fuzz/obj/%.o: %.cc
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -MMD -MP -c -o $@ $<

# build/fuzz/fuzz_<name>: its own object and those of its sources (clang++ links C++)
define FUZZ_BIN
FUZZ_SRC_$(1) ?= $$(LIB_SRC) $$(LIB_CXX)
build/fuzz/fuzz_$(1): build/fuzz/obj/tests/fuzz/fuzz_$(1).o $$(addprefix build/fuzz/obj/,$$(addsuffix .o,$$(basename $$(FUZZ_SRC_$(1)))))
	$$(if $$(filter %.cc,$$(FUZZ_SRC_$(1))),$$(FUZZ_CXX),$$(FUZZ_CC)) $$(FUZZ_FLAGS) -o $$@ $$^ -Wl,--as-needed $$(PKG_LIBS)
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call FUZZ_BIN,$(n))))

fuzz: fuzz-build
	@fail=0; for n in $(FUZZ_NAMES); do \
	    c=build/fuzz/corpus-$$n; a=build/fuzz/artifacts-$$n; log=build/fuzz/fuzz_$$n.log; \
	    mkdir -p $$c $$a; \
	    if [ -d tests/fuzz/corpus/$$n ]; then cp -R tests/fuzz/corpus/$$n/. $$c/; fi; \
	    if UBSAN_OPTIONS=print_stacktrace=1 build/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) \
	        $(FUZZ_RUN) -artifact_prefix=$$a/ $$c >$$log 2>&1; then \
	        echo "ok   fuzz_$$n ($(FUZZ_SECONDS) s): $$(grep -E '^#[0-9]+[[:space:]]+DONE' $$log | tail -n 1)"; \
	    else \
	        fail=1; echo "FAIL fuzz_$$n ($(FUZZ_SECONDS) s), crash input in $$a/, full log $$log:"; \
	        tail -n 40 $$log | sed 's/^/    /'; \
	    fi; \
	done; exit $$fail

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

-include $(wildcard build/fuzz/obj/*/*.d build/fuzz/obj/*/*/*.d)

-include $(OBJ:.o=.d) $(TOBJ:.o=.d) $(MAINS:.o=.d)
