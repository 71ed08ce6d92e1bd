"""Runs every dual test file (marked RUN_UNDER_MICROPYTHON = True) under MicroPython too.

Pytest runs those files under CPython directly; this module runs the same files under the
MicroPython unix port and under the twin (32-bit, float32, firmware frozen in) with
tests/mp_runner.py, so pure firmware logic is proven on all three.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, TESTS, check, mp_plain_path, run_micropython

DUAL = sorted(
    p
    for p in TESTS.rglob("test_*.py")
    if p.name != "test_micropython_dual.py" and "RUN_UNDER_MICROPYTHON = True" in p.read_text()
)


def test_dual_files_exist():
    assert DUAL, "no dual test files found"


@pytest.mark.parametrize("path", DUAL, ids=[str(p.relative_to(TESTS)) for p in DUAL])
def test_under_micropython(path, vm):
    out = check(
        run_micropython(
            [str(TESTS / "mp_runner.py"), str(path)],
            path=mp_plain_path(path.parent, TESTS),
            heapsize="2M",
            cwd=ROOT,
            vm=vm,
        )
    )
    assert " passed, 0 failed" in out
