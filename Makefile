# Rampart — thin wrapper around Meson. The two commands a newcomer needs:
#   make run    install what is missing, build, start a development instance
#   make check  install what is missing, build (-Werror), run every test, ASan+UBSan too
BUILD      ?= build
BUILD_ASAN ?= build-asan
PYTHON     ?= /usr/bin/python3

.PHONY: all bootstrap build build-asan check unit integration run clean docs fuzz

all: build

bootstrap:
	@scripts/bootstrap.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized -Dwerror=true

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) --buildtype=debug -Dwerror=true \
	    -Db_sanitize=address,undefined -Db_lundef=false

build-asan: $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

unit: build
	meson test -C $(BUILD) --print-errorlogs

integration: build
	RAMPART_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q tests/integration

check: bootstrap
	$(MAKE) build build-asan
	meson test -C $(BUILD) --print-errorlogs
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    meson test -C $(BUILD_ASAN) --print-errorlogs
	scripts/check-config-doc.sh $(BUILD)
	FUZZ_SECONDS=$${FUZZ_SECONDS:-15} scripts/fuzz-smoke.sh
	RAMPART_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration
	RAMPART_BUILD=$(abspath $(BUILD_ASAN)) RAMPART_SANITIZED=1 $(PYTHON) -m pytest -q -p no:cacheprovider \
	    -m "not slow" tests/integration

run: bootstrap build
	scripts/dev-instance.sh $(BUILD)

docs: build
	$(BUILD)/rampart config-doc > docs/configuration.md

fuzz: bootstrap
	FUZZ_SECONDS=$${FUZZ_SECONDS:-300} scripts/fuzz-smoke.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-fuzz
