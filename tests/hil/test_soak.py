"""The application on the board: heap free after boot, then a soak (--soak-min, 10 by default;
virtual minutes on the virtual board) with limits on FIFO overflows, task lateness, GC pauses,
resets and subsystem faults. Runs after the bring-up checks (it leaves maintenance mode)."""

from __future__ import annotations

import time

import checks
from hilboard import Result

MAX_LATE_MS = 1000  # a task waking a second late has not stalled the 640 ms FIFO yet
MAX_GC_MS = 50  # BRIEF: ~1.8 ms without SPIRAM, ~100 ms with it (the board has none)
MAX_FIFO_OVERFLOWS = 0


def test_heap_after_boot_and_soak(board, report, request):
    soak_s = float(request.config.getoption("--soak-min")) * 60
    version = board.boot_app()
    first = board.status()
    results = [Result("app boots and answers the sync protocol", version, "any", True),
               Result("heap free after boot", first["heap_free_bytes"],
                      f">= {checks.MIN_HEAP_FREE_BYTES} bytes",
                      first["heap_free_bytes"] >= checks.MIN_HEAP_FREE_BYTES,
                      "the virtual board's heap is larger than the ESP32's" if board.virtual
                      else "")]
    # Wait out the soak on the board's own clock (virtual time on the virtual board).
    real_limit = time.monotonic() + max(120.0, soak_s * 2)
    st = first
    uptimes = [first["uptime_s"]]
    while st["uptime_s"] - first["uptime_s"] < soak_s and time.monotonic() < real_limit:
        time.sleep(0.5 if board.virtual else 10.0)
        st = board.status()
        uptimes.append(st["uptime_s"])
    ran_s = st["uptime_s"] - first["uptime_s"]
    resets = sum(1 for a, b in zip(uptimes, uptimes[1:], strict=False) if b < a)
    perf = st.get("perf")
    results += [
        Result("soak duration (board clock)", f"{ran_s} s", f">= {soak_s:.0f} s",
               ran_s >= soak_s),
        Result("resets during the soak", resets, "0", resets == 0),
    ]
    faults = {k: v for k, v in st["faults"].items() if v.get("state") != "ok" or v.get("errors")}
    results.append(Result("subsystem faults during the soak", len(faults), "0", not faults,
                          str(faults)[:200] if faults else ""))
    if perf is None:
        results.append(Result("FIFO overflows, lateness, GC pauses", "not reported", "-", False,
                              "this firmware has no STATUS perf figures: deploy a newer one"))
    else:
        results += [
            Result("FIFO overflows", perf["fifo_overflows"], f"<= {MAX_FIFO_OVERFLOWS}",
                   perf["fifo_overflows"] <= MAX_FIFO_OVERFLOWS),
            Result("worst task lateness", f"{perf['late_ms_max']} ms", f"<= {MAX_LATE_MS} ms",
                   perf["late_ms_max"] <= MAX_LATE_MS),
            Result("longest GC pause at epoch end", f"{perf['gc_ms_max']} ms",
                   f"<= {MAX_GC_MS} ms", perf["gc_ms_max"] <= MAX_GC_MS,
                   "virtual time: CPU costs no time here" if board.virtual else ""),
        ]
    if board.vboard is not None:
        results.append(Result("virtual board errors", board.vboard.error or "none", "none",
                              board.vboard.error is None))
    report(results)
