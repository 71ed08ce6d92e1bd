"""Every state file the device reads at boot, in any shape, leaves it booting and recording
(issue 15 item 2): unit checks of the schema checks (CPython) and device-state fuzzing of the
whole app on the virtual board (MicroPython)."""

from __future__ import annotations

import json

import pytest
from conftest import TESTS, check, run_micropython
from hypothesis import given, settings
from hypothesis import strategies as st
from nightstand import paths
from nsdev import bootfiles
from nsdev.core import nightfile, vocab
from nsdev.core.arousal import Hyperarousal

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["nights", "base_hr", "base_var", "base_decline", "ssid",
                                       "password", "x"]), inner, max_size=5),
    max_leaves=12,
)


@pytest.mark.parametrize("text", ['{"nights":"x"}', '{"base_hr":null}', "[1]", '{"base_hr":NaN}',
                                  '{"nights":1.5}', '{"base_var":-1}', '{"nights":true}', "\xff"])
def test_bad_baseline_gives_a_fresh_one_and_says_so(tmp_path, text):
    p = tmp_path / "baseline.json"
    p.write_text(text, errors="surrogateescape") if text != "\xff" else p.write_bytes(b"\xff")
    bootfiles.repairs.clear()
    h = bootfiles.load_baseline(str(p))
    assert h.nights == 0 and h.base_hr == 0.0
    assert len(bootfiles.repairs) == 1 and "baseline" in bootfiles.repairs[0]


def test_good_baseline_is_kept_and_missing_is_not_a_repair(tmp_path):
    p = tmp_path / "baseline.json"
    good = {"nights": 4, "base_hr": 57.5, "base_var": 6.25, "base_decline": 5.0}
    p.write_text(json.dumps(good))
    bootfiles.repairs.clear()
    assert bootfiles.load_baseline(str(p)).to_dict() == good
    assert bootfiles.load_baseline(str(tmp_path / "none.json")).nights == 0
    assert bootfiles.repairs == []


@pytest.mark.parametrize("text", ["[1]", '{"ssid":5}', '{"ssid":""}', '{"ssid":"x","password":1}',
                                  '{"ssid":"' + "x" * 33 + '"}', "null"])
def test_bad_wifi_file_leaves_wifi_off_and_says_so(tmp_path, text):
    p = tmp_path / "wifi.json"
    p.write_text(text)
    bootfiles.repairs.clear()
    assert bootfiles.load_wifi(str(p)) is None
    assert len(bootfiles.repairs) == 1 and "Wi-Fi off" in bootfiles.repairs[0]
    p.write_text('{"ssid":"home","password":"password1"}')
    assert bootfiles.load_wifi(str(p)) == ("home", "password1")


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_baseline_and_wifi_never_raise_on_any_json_shape(value):
    try:
        h = Hyperarousal.from_dict(value)
    except ValueError:
        pass
    else:
        assert 0 <= h.nights and 0.0 <= h.base_hr <= 250.0 and h.base_var >= 0.0
    if isinstance(value, dict):
        assert bootfiles._wifi_error(value) is None or isinstance(bootfiles._wifi_error(value),
                                                                  str)


def test_reset_note_is_read_once_as_printable_text(tmp_path):
    p = tmp_path / "reset_why.txt"
    p.write_bytes(b"crash: \xff\x00boom\n")
    assert bootfiles.take_reset_note(str(p)) == "crash: ??boom?"
    assert not p.exists() and bootfiles.take_reset_note(str(p)) is None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_device_state_fuzzing_always_boots_records_and_says_what_it_repaired(tmp_path, vm):
    """40 boots of the real app under MicroPython (both VMs), 75 virtual seconds each; before
    each boot random JSON shapes / random bytes / the review's shapes go into the state files."""
    proc = run_micropython(
        [str(TESTS / "firmware" / "mp_bootfuzz.py"), "40", "20261", "75", str(_free_port())],
        path=paths.micropython_path(TESTS), heapsize="2M", cwd=tmp_path, timeout=240,
        stdin=b"", vm=vm)
    out = check(proc)
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert lines[-1]["boots"] == 40 and lines[-1]["failures"] == []
    said = " ".join(r for line in lines[:-1] for r in line["repairs"])
    for name in ("index.json", "baseline.json", "wifi.json", "config.json", "secret.bin"):
        assert name in said  # the fuzz did reach every file
    # The repairs are in the nights too, as flash fault events with their text.
    texts = set()
    for f in (tmp_path / "data" / "nights").glob("*.ns"):
        for r in nightfile.decode(f.read_bytes())["records"]:
            if r["type"] == "event" and r["kind"] == vocab.EV_SENSOR_FAULT \
                    and r["values"][:1] == [vocab.SENSOR_FLASH]:
                texts.add(r.get("text", ""))
    for name in ("index.json", "baseline.json", "wifi.json"):
        assert any(t.startswith(name) for t in texts), (name, sorted(texts)[:5])
