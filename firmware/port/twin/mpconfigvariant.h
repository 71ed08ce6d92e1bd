// nightstand "twin": MicroPython's unix port configured to be as close to the ESP32 as this
// machine can run: 32-bit (MICROPY_FORCE_32BIT in mpconfigvariant.mk, so small ints are 31-bit
// and objects/heap blocks are half the 64-bit size), single-precision floats, the firmware frozen
// in. Built by `make twin` against MicroPython v1.28.0 (see docs/twin-and-image.md).
// Own work; the settings mirror what ports/esp32/mpconfigport.h selects.

#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

// The ESP32 port uses single-precision floats (MICROPY_FLOAT_IMPL_FLOAT).
#define MICROPY_FLOAT_IMPL             (MICROPY_FLOAT_IMPL_FLOAT)

// Arbitrary-precision ints as on the ESP32 (values beyond 31 bits allocate on the heap).
#define MICROPY_LONGINT_IMPL           (MICROPY_LONGINT_IMPL_MPZ)

// The common unix settings (time, select, os, emergency exception buffer, ...); the include path
// has the port folder, so this resolves inside the MicroPython tree.
#include "variants/mpconfigvariant_common.h"
