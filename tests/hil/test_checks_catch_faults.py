"""The bring-up checks fail when they should: a virtual board with the BME680 left off and a
MAX30102 answering with a wrong PART_ID (a clone or a different chip), and no finger on the
sensor. Virtual only (a real board cannot be broken on demand)."""

from __future__ import annotations

import checks
import pytest
from hilboard import NOON_UTC, VIRTUAL, HilBoard
from nightstand.sim import serve


@pytest.fixture(scope="module")
def broken(board_port, tmp_path_factory):
    if board_port != VIRTUAL:
        pytest.skip("fault injection needs the virtual board")
    spec = serve.BoardSpec(start_unix_s=NOON_UTC, absent=["bme680"],
                           chip_overrides={"max30102": {"part_id": 0x11}})
    b = HilBoard.open_virtual(tmp_path_factory.mktemp("broken"), spec)
    yield b
    b.close()


def _verdicts(results):
    return {r.check: r.ok for r in results}


def test_scan_misses_the_absent_bme680(broken):
    v = _verdicts(checks.i2c_scan(broken))
    assert v == {"I2C: MAX30102 at 0x57": True, "I2C: BME680 at 0x76/0x77": False,
                 "I2C: VEML7700 at 0x10": True}


def test_ids_flag_the_wrong_part_and_the_missing_chip(broken):
    v = _verdicts(checks.part_ids(broken))
    assert v == {"MAX30102 PART_ID": False, "BME680 chip id": False,
                 "VEML7700 ID low byte": True}


def test_bme680_readings_fail_without_the_chip(broken):
    with pytest.raises(Exception, match="OSError|ENODEV|19"):
        checks.bme680_ranges(broken)
