# The frozen-module manifest of the nightstand firmware, shared by the ESP32 image and the twin
# (MicroPython's unix port built by `make twin`). See docs/twin-and-image.md.
#
# A custom FROZEN_MANIFEST replaces the port's own manifest (ports/esp32/boards/manifest.py for
# ESP32_GENERIC), so the ESP32 build includes it first: that keeps _boot.py (which mounts the
# littlefs filesystem), asyncio and the port's other modules. The twin (port/twin/manifest.py)
# includes this file with board_manifest=False: the unix port has no board manifest, so asyncio
# comes straight from the MicroPython tree.
# `options`, `include`, `require`, `module` and `package` are the manifest API
# (tools/makemanifest.py).
# ruff: noqa: F821

options.defaults(board_manifest=True)
if options.board_manifest:
    include("$(PORT_DIR)/boards/manifest.py")
else:
    include("$(MPY_DIR)/extmod/asyncio")

# micropython-lib, at the commit the pinned MicroPython tree pins: for the on-device test runner.
require("unittest")

# The firmware: main.py and the nsdev package (the same .py files the simulator runs).
module("main.py")
package("nsdev")
