# The twin's frozen modules: the firmware's own manifest, without the (ESP32) board manifest.
# ruff: noqa: F821
include("../../manifest.py", board_manifest=False)
