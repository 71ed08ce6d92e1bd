"""The PPG per-sample path (feed, gap, led_changed, pop_beat) allocates nothing: heap_lock()."""

from conftest import ROOT, check, mp_plain_path, run_micropython

SCRIPT = """
import array, math, micropython
from nsdev.core.ppg import PPGPipeline
import ppg_synth as S
fs = 50
red, ir, peaks = S.train(72, fs, 120)
for i in range(60 * fs, 70 * fs):          # motion burst
    ir[i] += ((i * 7919) % 30000) - 15000
for i in range(90 * fs, 100 * fs):         # finger off
    ir[i] = 1500
    red[i] = 1200
pipe = PPGPipeline(fs)
rb = array.array('i', [0] * 8)
ib = array.array('i', [0] * 8)
out = array.array('i', [0] * 4)
n = len(ir)
beats = 0
pipe.feed(red, ir, 1)  # warm-up: attribute dictionaries settle
micropython.heap_lock()
try:
    i = 1
    while i < n:
        m = 8 if n - i >= 8 else n - i
        for j in range(m):
            ib[j] = ir[i + j]
            rb[j] = red[i + j]
        pipe.feed(rb, ib, m)
        i += m
        if i == 40 * fs:
            pipe.gap(17)
        if i == 80 * fs:
            pipe.led_changed()
        while pipe.pop_beat(out):
            beats += 1
finally:
    micropython.heap_unlock()
print("beats", beats)
"""


def test_feed_allocates_nothing_under_heap_lock(tmp_path, vm):
    script = tmp_path / "heap.py"
    script.write_text(SCRIPT)
    out = check(run_micropython(
        [str(script)], path=mp_plain_path(ROOT / "tests" / "firmware" / "core"),
        heapsize="1M", cwd=tmp_path, vm=vm,
    ))
    beats = int(out.split()[1])
    assert 110 <= beats <= 150, out
