# nightstand "twin" variant of the MicroPython v1.28.0 unix port (see mpconfigvariant.h and
# docs/twin-and-image.md). Build it with `make twin` from the project root.

# 32-bit build: 31-bit small ints and 32-bit object words, as on the ESP32's Xtensa LX6.
MICROPY_FORCE_32BIT = 1

# Nothing the firmware uses and nothing the cut-down tree provides.
MICROPY_PY_FFI = 0
MICROPY_PY_BTREE = 0
MICROPY_PY_SSL = 0
MICROPY_SSL_AXTLS = 0
MICROPY_SSL_MBEDTLS = 0

# @micropython.native code (core/ppg.py) is frozen as 32-bit x86 machine code here; the ESP32
# image freezes it as xtensawin.
MPY_CROSS_FLAGS += -march=x86

# The firmware, frozen as on the board, through the manifest the ESP32 image uses too.
FROZEN_MANIFEST ?= $(VARIANT_DIR)/manifest.py
