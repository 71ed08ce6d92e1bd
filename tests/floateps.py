# Float tolerances derived from the interpreter's precision, for tests that run on CPython, the
# 64-bit unix port (double) and the twin / ESP32 (single precision, MICROPY_FLOAT_IMPL_FLOAT).

# Machine epsilon: the gap between 1.0 and the next float (2**-52 double, 2**-23 float32).
EPS = 2.0 ** -52 if 1.0 + 2.0 ** -52 != 1.0 else 2.0 ** -23
SINGLE = EPS > 1e-10


def close(a, b, ulps=4):
    """a and b agree to `ulps` units of relative rounding error (each float op adds <= EPS/2)."""
    return abs(a - b) <= ulps * EPS * max(abs(a), abs(b))
