# Front door. `make run` starts a server on ./data:8000, `make test` runs everything CI runs.
PRESET ?= release
BUILD   = build/$(PRESET)
WERROR ?= $(if $(CI),ON,OFF)
FUZZ_SECONDS ?= 60
.PHONY: all setup build run test unit e2e asan tsan fuzz format clean bench

all: build
setup:
	@scripts/setup.sh
build: setup
	@cmake --preset $(PRESET) -DARC_WERROR=$(WERROR) >/dev/null
	@cmake --build $(BUILD)
run: build
	$(BUILD)/src/arc serve
TSAN_OPTIONS ?= suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1
export TSAN_OPTIONS
unit: build
	cd $(BUILD) && ctest --output-on-failure
e2e: build
	ARC_BIN=$(CURDIR)/$(BUILD)/src/arc .venv/bin/python -m pytest -q tests/e2e
# Everything CI runs: release unit+e2e, then the same under ASan+UBSan, then fuzz smoke.
test:
	$(MAKE) unit e2e PRESET=release
	$(MAKE) unit e2e PRESET=asan
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)
asan:
	$(MAKE) unit e2e PRESET=asan
tsan:
	$(MAKE) unit e2e PRESET=tsan
fuzz: setup
	@cmake --preset fuzz >/dev/null && cmake --build build/fuzz
	scripts/fuzz.sh build/fuzz $(FUZZ_SECONDS)
bench:
	$(MAKE) build PRESET=release && bench/run.sh
format:
	clang-format-14 -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'bench/*.c')
clean:
	rm -rf build
