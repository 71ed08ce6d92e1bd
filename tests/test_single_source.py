"""Each shared constant is defined once (issue 13): a grep over firmware/ and host_tools/ finds
one definition and none of the old re-definitions or hard-coded copies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "firmware").rglob("*.py"), *(ROOT / "host_tools").rglob("*.py")])

LIGHT = "firmware/nsdev/core/light.py"
# (what, regex, the one file allowed to define it)
DEFINED_ONCE = [
    ("epoch length", r"^\s*EPOCH_S\s*=\s*\d", "firmware/nsdev/core/vocab.py"),
    ("PPG rate default", r"^\s*PPG_RATE_HZ\s*=\s*\d", "firmware/nsdev/config.py"),
    ("evening melanopic limit", r"\"evening_cap_mel_lx\":\s*[\d.]", LIGHT),
    ("night melanopic limit", r"\"night_cap_mel_lx\":\s*[\d.]", LIGHT),
    ("pairing key length", r"^\s*SECRET_LEN\s*=\s*\d", "firmware/nsdev/core/proto.py"),
    ("lamp phase codes", r"^\s*PHASE_NIGHT\s*=\s*\d", "firmware/nsdev/core/vocab.py"),
]
# Copies that must not come back.
NEVER = [
    ("an epoch length written out", r"EPOCH_MS\s*=\s*30000|epoch_s\s*=\s*30\b|// 30 \* 30"
                                    r"|epochs of 30 s"),
    ("a PPG rate default written out", r"fs_hz\s*(:\s*float)?\s*=\s*50\b"
                                       r"|\"ppg_rate_hz\":\s*\(\"int\",\s*50"),
    ("a melanopic limit written out", r"limit 10\)|limit 1\)"),
    ("the lamp's melanopic model re-implemented", r"\[\"(warm|amber)_der\"\]"),
    ("a pairing key length written out", r"len\(secret\)\s*[!=]=\s*32|token_bytes\(32\)"),
]


def _hits(pattern: str) -> list[str]:
    rx = re.compile(pattern, re.M)
    out = []
    for path in SOURCES:
        for m in rx.finditer(path.read_text()):
            line = path.read_text().count("\n", 0, m.start()) + 1
            out.append(f"{path.relative_to(ROOT).as_posix()}:{line}")
    return out


@pytest.mark.parametrize("what,pattern,home", DEFINED_ONCE, ids=[d[0] for d in DEFINED_ONCE])
def test_defined_once(what, pattern, home):
    hits = _hits(pattern)
    assert [h.rsplit(":", 1)[0] for h in hits] == [home], f"{what}: {hits}"


@pytest.mark.parametrize("what,pattern", NEVER, ids=[n[0] for n in NEVER])
def test_no_copies(what, pattern):
    hits = [h for h in _hits(pattern) if not h.startswith(LIGHT)]
    assert hits == [], f"{what}: {hits}"


def test_the_scan_finds_a_copy():
    assert _hits(r"^\s*EPOCH_S\s*=\s*\d")  # the real definition is seen
    assert re.search(NEVER[2][1], 'f"(limit 10)"')


def test_firmware_takes_const_from_compat():
    # One place: nsdev.compat (micropython.const on the device, a stand-in under CPython). The
    # MicroPython compiler folds `X = const(...)` by the name `const`, wherever it came from.
    nsdev = ROOT / "firmware" / "nsdev"
    files = sorted(nsdev.rglob("*.py"))
    rel = {p: p.relative_to(nsdev).as_posix() for p in files}
    assert "drivers/max30102.py" in rel.values() and "core/vocab.py" in rel.values()
    direct = [rel[p] for p in files if "from micropython import const" in p.read_text()
              and rel[p] != "compat.py"]
    assert direct == [], "import const from nsdev.compat: " + ", ".join(direct)
    users = [p for p in files if re.search(r"^\w+ = const\(", p.read_text(), re.M)
             and rel[p] != "compat.py"]
    assert len(users) >= 10
    for p in users:
        assert re.search(r"^from nsdev\.compat import (\w+, )*const\b", p.read_text(), re.M), \
            rel[p]
