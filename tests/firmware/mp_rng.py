# A tiny deterministic random source for the MicroPython test drivers (mp_bootfuzz.py,
# mp_powercut.py): xorshift32 (Marsaglia 2003, shifts 13/17/5), the same sequence on both VMs and
# under CPython, independent of the port's `random` module. Imported from the script's folder.


class Rng:
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
