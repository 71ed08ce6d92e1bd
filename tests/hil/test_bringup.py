"""Bring-up: buses, chips, readings, timing, lamp, button, flash, and the firmware's own unit tests
run on the board. The same checks on a real ESP32 and on the virtual board."""

from __future__ import annotations

import re
from pathlib import Path

import checks
from hilboard import Result
from nightstand import deploy
from nsdev import VERSION

TESTS = Path(__file__).resolve().parent.parent


def test_firmware_version(board, report):
    v = board.json("import json, nsdev; print(json.dumps(nsdev.VERSION))")
    report([Result("firmware version on the board", v, VERSION, v == VERSION,
                   "" if v == VERSION else "run `nightstand deploy` first")])


def test_i2c_scan(board, report):
    report(checks.i2c_scan(board))


def test_part_ids(board, report):
    report(checks.part_ids(board))


def test_bme680_readings(board, report):
    report(checks.bme680_ranges(board))


def test_ppg_fifo_rate_against_rtc(board, report):
    report(checks.ppg_rate(board, 60))


def test_led_current_steps(board, report):
    report(checks.led_steps(board))


def test_lamp_pwm_sweep(board, report):
    report(checks.lamp_sweep(board))


def test_button(board, report):
    results = checks.button_idle(board)
    if board.virtual:  # a press, as a technician would press it on the bench
        pressed = board.json(
            "import json, world, time, machine\nfrom nsdev import pinmap\n"
            "world.pin_inputs[pinmap.BUTTON].press_now()\n"
            "v = machine.Pin(pinmap.BUTTON, machine.Pin.IN).value()\n"
            "time.sleep_ms(500)\n"
            "print(json.dumps([v, machine.Pin(pinmap.BUTTON, machine.Pin.IN).value()]))")
        results.append(Result("button press reads low, then high", pressed, "[0, 1]",
                              pressed == [0, 1]))
    report(results)


def test_flash_space_and_throughput(board, report):
    report(checks.flash_space(board))


def _dual_test_files() -> list[Path]:
    mark = re.compile("^RUN_UNDER_MICROPYTHON" + r" = True", re.M)  # split: not a dual file itself
    return sorted(p for p in TESTS.rglob("test_*.py") if mark.search(p.read_text()))


def test_firmware_unit_tests_on_the_board(board, report, tmp_path):
    """The RUN_UNDER_MICROPYTHON test modules, compiled for the board, run there by
    tests/mp_runner.py; each module's pass/fail count comes back into pytest."""
    from nightstand.sim import runner

    mpy = int(board.json("import sys, json; print(json.dumps(sys.implementation._mpy))"))
    march = deploy.MPY_ARCHES.get((mpy >> 10) & 0x0F, deploy.ESP32_MARCH)
    files = [("mp_runner.py", TESTS / "mp_runner.py")]
    for f in _dual_test_files():
        text = f.read_text()
        # Helpers beside the test or in tests/ (the dual runner's path: test_micropython_dual.py).
        helpers = [h for d in (f.parent, TESTS) for h in d.glob("*.py")
                   if not h.name.startswith(("test_", "conftest"))
                   and (f"import {h.stem}" in text or f"from {h.stem} import" in text)]
        files += [(h.name, h) for h in helpers] + [(f.name, f)]
    out = tmp_path / "mpy"
    runner.compile_files(sorted(set(files)), out, [f"-march={march}"])
    board.mkdir("hil")
    for name in sorted({n for n, _ in files}):
        board.put("hil/" + name.replace(".py", ".mpy"), (out / name.replace(".py", ".mpy"))
                  .read_bytes())
    results = []
    for f in _dual_test_files():
        text = board.exec(
            "import sys\nif 'hil' not in sys.path: sys.path.insert(0, 'hil')\n"
            "import mp_runner, gc\n_before = list(sys.modules)\ngc.collect()\n"
            f"mp_runner.main(['hil/{f.name}'])\n"
            # the module and every helper it loaded (ppg_ref, resp_ref: tens of KiB) go, or the
            # later modules run out of heap on the board
            "for _n in [n for n in sys.modules if n not in _before]:\n"
            "    del sys.modules[_n]\n"
            "del _before\ngc.collect()\n", timeout_s=300)
        last = text.strip().splitlines()[-1] if text.strip() else "no output"
        fails = [ln for ln in text.splitlines() if ln.startswith("FAIL")]
        ok = last.endswith(" 0 failed") and not last.startswith("0 passed")
        results.append(Result(f"on-board tests {f.relative_to(TESTS)}", last, "0 failed", ok,
                              "; ".join(fails[:3])))
    board.exec("import os\nfor n in os.listdir('hil'): os.remove('hil/' + n)\nos.rmdir('hil')")
    report(results)
