# What the PPG modules share: the MAX30102's ADC limits, the per-beat/per-epoch flag bits and the
# IBI range (30-200 bpm) the beat rules serve, and the allocation-free sort their medians use.
# Used by ppg, ppgbeats, ppgepoch, ppgled and arousal.
from nsdev.compat import const

ADC_FULL_SCALE = const(262143)  # 18-bit ADC (MAX30102 datasheet 19-7740)
SAT_COUNTS = const(261000)  # at/above: ADC saturated (full scale 262143)
NO_CONTACT_COUNTS = const(13107)  # below 5% of full scale: nothing reflects the LED

# Flag bits (per beat and per epoch).
NO_CONTACT = const(1)
SATURATED = const(2)
MOTION = const(4)
OVERFLOW = const(8)
LOW_PERFUSION = const(16)
FLAG_NAMES = ("no_contact", "saturated", "motion", "overflow", "low_perfusion")

MIN_IBI_MS = const(300)  # 200 bpm
MAX_IBI_MS = const(2200)  # ~27 bpm: a bit of room below the 30 bpm spec; hosts tell IBI from gap


def flag_names(flags):
    """List of names of the bits set in a flags value."""
    return [FLAG_NAMES[i] for i in range(len(FLAG_NAMES)) if flags & (1 << i)]


def sort_into(src, n, dst):
    """Insertion-sort src[0..n-1] into dst[0..n-1] (dst may be src: in place). Nothing is
    allocated (medians run per beat/epoch; fresh lists fragmented the heap); n <= 128."""
    for i in range(n):
        v = src[i]
        j = i
        while j > 0 and dst[j - 1] > v:
            dst[j] = dst[j - 1]
            j -= 1
        dst[j] = v
