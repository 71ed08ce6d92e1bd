# Shared by the MicroPython test drivers (mp_bootfuzz.py, mp_powercut.py, mp_flash_erases.py),
# imported from the script's folder: a deterministic random source and reading a night back.


def read_all(rec, nid):
    """The whole night file `nid` through the recorder's sync read path (1 KiB at a time)."""
    size = rec.night_size(nid)
    out = bytearray(size)
    buf = bytearray(1024)
    pos = 0
    while pos < size:
        got = rec.read_night(nid, pos, 1024, buf)
        if not got:
            break
        out[pos:pos + got] = buf[:got]
        pos += got
    return out


class Rng:
    """xorshift32 (Marsaglia 2003, shifts 13/17/5): the same sequence on both VMs and under
    CPython, independent of the port's `random` module."""

    def __init__(self, seed):
        self.x = seed or 1

    def next(self, n):
        """A number in [0, n)."""
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x % n

    def pick(self, seq):
        return seq[self.next(len(seq))]

    def bytes(self, n):
        return bytes(self.next(256) for _ in range(n))
