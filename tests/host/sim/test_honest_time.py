"""Honest time: the firmware's computation, flash and console cost virtual time on the virtual
board (docs/simulation.md). With an absurdly slow CPU the MAX30102 FIFO overflows; the firmware
must flag the lost samples as gaps and never invent beats. With the derived ESP32 factor and
typical flash timing, computation and flash cost time and the watchdog keeps its margin."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from nightstand.sim import runner
from nightstand.sim.scenario import validate
from nightstand.sim.session import nights_in_flash, simulate
from nsdev.core import ppgdefs, vocab
from shortnight import fifty_minutes

SCENARIO = fifty_minutes("around bedtime", seed=23)


def _truth_beats_s(gen) -> np.ndarray:
    with open(gen.paths["beats"]) as f:
        return np.array([float(r["time_s"]) for r in csv.DictReader(f)])


SLOW_FACTOR = 800.0  # a CPU 800x slower than the host: 16x slower than an ESP32 (factor 50)


@pytest.fixture(scope="module")
def slow_cpu(tmp_path_factory):
    """A CPU 16x slower than an ESP32: the FIFO (640 ms) overflows often (~1200-1400 samples
    lost on this VM), while the slowest steps (boot: ~3.5 s) stay clear of the 8-s watchdog.
    (At 1000x they reached 5-7 s before the firmware got faster, and host noise x 1000 then
    sometimes reset the board.) The bounds below hold for a host up to ~2x faster or slower:
    the factor scales this host's CPU time."""
    out = tmp_path_factory.mktemp("slow")
    # The default 128 KiB data heap: the MemoryError once seen here (allocating 1.5 KiB) was
    # the simulator's end-of-run report importing vflash into a full heap, not the firmware.
    gen, result = simulate(validate(SCENARIO), out, quiet=True,
                           honest=runner.honest_time_config(SLOW_FACTOR, None))
    (night,) = nights_in_flash(out)
    return gen, result, night


def test_an_absurdly_slow_cpu_overflows_the_fifo(slow_cpu):
    gen, result, night = slow_cpu
    assert result.honest["speed_factor"] == SLOW_FACTOR
    assert result.fifo_lost_samples > 100
    flagged = [e for e in night.epochs if e["flags"] & vocab.FLAG_FIFO_OVERFLOW]
    assert len(flagged) >= 10  # the gaps are marked, epoch by epoch
    # The night keeps recording: every 30-s slot from the first epoch to the end has its epoch,
    # except right after a watchdog reset (a step of > 8 s at this speed: rare, and not a fault
    # of the firmware's recording) while the board boots again.
    reset_s = [r[0] for r in result.resets]
    have = {e["unix_s"] for e in night.epochs}
    first = min(have)
    # (the last slot's epoch is written after it ends, plus its work: after the scenario's end)
    end = int(gen.start_unix_s + gen.duration_s) - 2 * vocab.EPOCH_S
    missing = [t for t in range(first, end + 1, vocab.EPOCH_S) if t not in have]
    unexplained = [t - gen.start_unix_s for t in missing
                   if not any(0 <= t - (gen.start_unix_s + r) <= 120 for r in reset_s)]
    assert len(have) > 80
    assert unexplained == [], (unexplained, reset_s)


def test_overflows_are_gaps_never_invented_beats(slow_cpu):
    """No beat is invented: between two gaps the firmware never stores more beats than the
    heart made. And almost every stored beat-to-beat interval is a true one (a gap counted as
    one interval would show as a long one). KNOWN: absolute beat times can slip by a few tenths
    of a second while overflows are continuous (the losses the chip's counter cannot show are
    estimated from the millisecond clock), so up to ~1 % of the intervals next to gaps come out
    wrong (docs/simulation.md, honest time)."""
    gen, _result, night = slow_cpu
    truth = _truth_beats_s(gen)
    true_ibi_ms = np.diff(truth) * 1000
    got = np.array(night.beat_t_ms) / 1000.0 - gen.start_unix_s
    assert len(got) > 500  # beats between the gaps are still found
    # The stored beat is the pulse at the finger, a pulse arrival time (~0.4 s in the
    # simulator's model) after the truth's beat: take that out, what remains is slip.
    i = np.clip(np.searchsorted(truth, got), 1, len(truth) - 1)
    nearest = np.where(np.abs(truth[i] - got) < np.abs(truth[i - 1] - got), truth[i], truth[i - 1])
    arrival = float(np.median(got - nearest))
    assert 0.0 <= arrival < 0.6
    got = got - arrival
    # Runs of stored beats without a gap: never more beats than the true ones in that span.
    cuts = np.where(np.diff(got) * 1000 > ppgdefs.MAX_IBI_MS)[0]
    for run in np.split(got, cuts + 1):
        made = np.sum((truth >= run[0] - 0.6) & (truth <= run[-1] + 0.6))
        assert len(run) <= made, (run[0], run[-1], len(run), made)
    checked = 0
    wrong = []
    for t_ms, ibi_ms in night.ibis_ms():
        if ibi_ms > ppgdefs.MAX_IBI_MS:
            continue  # beats on both sides of a gap: not an interval
        t = t_ms / 1000.0 - gen.start_unix_s
        near = (truth[:-1] > t - 3) & (truth[:-1] < t + 3)
        if not near.any() or np.min(np.abs(true_ibi_ms[near] - ibi_ms)) > 60:
            wrong.append((round(t, 2), ibi_ms))
        checked += 1
    assert checked > 500
    assert len(wrong) <= 0.01 * checked, wrong


@pytest.mark.parametrize("timing", ["typical", "worst"])
def test_esp32_speed_keeps_sampling_at_any_flash_timing(tmp_path, timing):
    """At the derived ESP32 speed the FIFO never overflows, at typical and at worst-case
    (datasheet maximum) W25Q32 flash times. Before: a ~0.85-s step at every epoch's breathing
    estimate (found at ~30 min: the estimate needs 48 s of clean beats) lost samples even at
    typical timing; at worst case an append that crossed a flash block erased two sectors
    (2 x 400 ms) in one step. Before, this night lost ~120 samples at typical timing and
    ~170-210 at worst case."""
    _gen, result = simulate(validate(SCENARIO), tmp_path, quiet=True, flash="littlefs",
                            honest=runner.honest_time_config(flash_timing=timing))
    h = result.honest
    assert h["speed_factor"] == runner.ESP32_SPEED_FACTOR
    assert h["cpu_s"] > 0  # the firmware's computation was charged
    assert h["flash_busy_s"] > 0  # and the flash's programs and erases
    assert result.resets == []
    assert h["wdt_margin_ms"] is not None and h["wdt_margin_ms"] > 2000
    # The longest gap between two FIFO reads is ~0.26 s (typical) and ~0.58 s (worst: one
    # erase, 400 ms, after a read) of the 640 ms the FIFO holds. KNOWN: a rare firmware step
    # charged ~0.5 s on a loaded host (host time x 50: noise, or a host collection inside a
    # step; `make bench` once showed one losing 4 samples at typical timing) may lose a few
    # samples; one such episode is allowed, a systematic loss (before: 117 and 199) is not.
    # Worst lateness depends on the host's timing and on the lamp: `make bench` prints it.
    assert result.fifo_lost_samples <= 16, (result.devices["max30102"], h["lateness_max_ms"])


def test_honest_time_from_the_cli(tmp_path, capsys):
    """`nightstand simulate --honest-time typical --speed-factor F` runs on the littlefs image
    with that factor and the flash's typical times, and prints the honest-time figures. (A small
    factor: this checks the wiring, not the board's timing. At factor 50 on a loaded host this
    night once overflowed the FIFO and its summary then failed in the host's sleep staging,
    sleepecg's PSD on a window set with no full rows: a separate bug, reported.)"""
    import json

    from nightstand import cli

    sc = SCENARIO
    path = tmp_path / "short.json"
    path.write_text(json.dumps(sc))
    out = tmp_path / "run"
    code = cli.main(["simulate", str(path), "--out", str(out), "--honest-time", "typical",
                     "--speed-factor", "5", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    ht = doc["sim"]["honest_time"]
    assert ht["speed_factor"] == 5.0 and ht["flash_timing"] == "typical"
    assert ht["firmware_cpu_s"] > 0 and ht["flash_busy_s"] > 0  # computation and flash charged
    assert ht["wdt_margin_ms"] is not None
    assert doc["sim"]["cpu_s"] > 0 and doc["sim"]["speedup_cpu"] > 0
    assert (out / "flash.img").exists()  # honest time prices the littlefs image's writes
    assert json.loads((out / "sim.json").read_text())["honest_time"]["speed_factor"] == 5.0
    assert len(doc["nights"]) == 1
