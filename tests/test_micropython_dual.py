"""Runs every dual test file (marked RUN_UNDER_MICROPYTHON = True) under MicroPython too.

Pytest runs those files under CPython directly; this module runs the same files under the
MicroPython unix port and under the twin (32-bit, float32, firmware frozen in) with
tests/mp_runner.py, so pure firmware logic is proven on all three.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, TESTS, check, mp_plain_path, require_vm, run_micropython

DUAL = sorted(
    p
    for p in TESTS.rglob("test_*.py")
    if p.name != "test_micropython_dual.py" and "RUN_UNDER_MICROPYTHON = True" in p.read_text()
)


def test_twin_vm_available():
    """The twin is what `make twin` promises: 32-bit small ints, float32, firmware frozen in.
    Where it is not built, this is the one skipped test that says how to enable the twin's."""
    require_vm("twin")
    out = check(run_micropython(
        ["-c", "import sys, nsdev; v = sys.implementation.version; "
               "print(sys.maxsize, 1.0 + 2.0 ** -24 == 1.0, v[0], v[1], v[2], nsdev.__file__)"],
        path="", vm="twin"))
    maxsize, single, major, minor, micro, where = out.split()
    assert maxsize == str(2**31 - 1) and single == "True"
    assert (major, minor, micro) == ("1", "28", "0")
    assert where == "nsdev/__init__.py", f"nsdev not frozen: {where}"  # frozen: no folder


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
