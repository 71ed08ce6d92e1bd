# Per-epoch PPG statistics: HR and HRV from the epoch's normal IBIs, 5-min SDNN, SpO2 by ratio of
# ratios, signal quality (SQI) and the epoch's quality/perfusion flags (docs/ppg-and-arousal.md).
# The pipeline's hot loop adds its sample counts to the public accumulators at the end of each
# feed(); the beat rules add each released beat with add_beat().
import array

from nsdev.compat import const
from nsdev.core import ppgdefs

_EPOCH_IBI_MAX = const(128)  # IBIs kept per epoch (200 bpm * 30 s = 100)
_SDNN_EPOCHS = const(10)  # 10 x 30 s = 5 min SDNN
_LOW_PERFUSION_PPM = const(500)  # perfusion (AC/DC) below 0.05%


def _median(src, m, nn):
    """src[0..m-1]'s upper median (sorted(...)[m // 2]; 0 if m == 0), sorted into nn in place."""
    ppgdefs.sort_into(src, m, nn)  # m <= 128, once an epoch, no allocation
    return nn[m // 2] if m else 0


class Epoch:
    """Summary of one epoch; a field is None when it cannot be known honestly."""

    def __init__(self):
        self.t_start_ms = 0
        self.t_end_ms = 0
        self.hr_bpm = None
        self.rmssd_ms = None
        self.sdnn_ms = None
        self.sdnn5_ms = None  # over the last 5 min (10 epochs), pooled
        self.pwa_mean = None  # mean pulse amplitude, ppm of DC (AC/DC * 1e6)
        self.spo2_pct = None
        self.r_ratio = None  # SpO2 ratio of ratios
        self.beats = 0
        self.sqi = 0  # 0-100
        self.flags = 0

    def to_dict(self):
        return {
            "t_start_ms": self.t_start_ms, "t_end_ms": self.t_end_ms, "hr_bpm": self.hr_bpm,
            "rmssd_ms": self.rmssd_ms, "sdnn_ms": self.sdnn_ms, "sdnn5_ms": self.sdnn5_ms,
            "pwa_mean": self.pwa_mean, "spo2_pct": self.spo2_pct, "r_ratio": self.r_ratio,
            "beats": self.beats, "sqi": self.sqi, "flags": self.flags,
        }


class EpochStats:
    """Accumulators of one epoch and the 5-min SDNN ring; close(t_end_ms) -> Epoch."""

    def __init__(self, spo2_a, spo2_b):
        # SpO2 = a - b * R; uncalibrated default 110 - 25 R (set per device by the app).
        self.spo2_a = spo2_a
        self.spo2_b = spo2_b
        self._ibi = array.array("h", [0] * _EPOCH_IBI_MAX)
        # Scratch for the epoch median, sorted in place: a fresh sorted() list (256-512 B every
        # epoch) was the first allocation to fail on a small heap (docs/twin-and-image.md).
        self._nn = array.array("h", [0] * _EPOCH_IBI_MAX)
        self._sd_n = array.array("i", [0] * _SDNN_EPOCHS)
        self._sd_sum = array.array("i", [0] * _SDNN_EPOCHS)
        self._sd_sq = array.array("i", [0] * _SDNN_EPOCHS)
        self._sd_pos = 0
        self.start(0)

    def start(self, t0_ms):
        """Begin a new epoch at t0_ms (the 5-min SDNN ring is kept)."""
        self.t0_ms = t0_ms
        self.n = 0  # samples fed
        self.sat = 0  # ... saturated
        self.nc = 0  # ... with no contact
        self.mot = 0  # ... in motion
        self.lost = 0  # samples lost (gaps)
        self.clean = 0  # samples with no flag
        self.ac_ir = 0  # sums over the clean samples: |high-passed| and DC (scaled)
        self.ac_red = 0
        self.dc_ir = 0
        self.dc_red = 0
        self._nibi = 0
        self._beats = 0
        self._pwa = 0

    def add_beat(self, ibi, pwa, flags):
        """A released beat: every beat counts; clean ones in 300-2200 ms give an IBI and PWA."""
        self._beats += 1
        if (flags == 0 and ppgdefs.MIN_IBI_MS <= ibi <= ppgdefs.MAX_IBI_MS
                and self._nibi < _EPOCH_IBI_MAX):
            self._ibi[self._nibi] = ibi
            self._nibi += 1
            self._pwa += pwa

    def close(self, t_end_ms):
        """Statistics of the epoch up to t_end_ms (allocates; not hot); starts the next one."""
        ep = Epoch()
        ep.t_start_ms = self.t0_ms
        ep.t_end_ms = t_end_ms
        n = self.n + self.lost
        flags = 0
        if n > 0:
            if self.nc * 10 > n:
                flags |= ppgdefs.NO_CONTACT
            if self.sat * 100 > n:
                flags |= ppgdefs.SATURATED
            if self.mot * 20 > n:
                flags |= ppgdefs.MOTION
        if self.lost > 0:
            flags |= ppgdefs.OVERFLOW
        ibis = self._ibi
        m = self._nibi
        ep.beats = self._beats
        # Normal-to-normal IBIs: within 30% of the epoch median (artefact/ectopic rejection).
        med = _median(ibis, m, self._nn)
        s = 0
        sq = 0
        k = 0
        ssd = 0
        nsd = 0
        prev = 0
        for i in range(m):
            v = ibis[i]
            if abs(v - med) * 10 <= med * 3:
                s += v
                sq += v * v
                k += 1
                if prev:
                    ssd += (v - prev) * (v - prev)
                    nsd += 1
                prev = v
            else:
                prev = 0
        clean_frac = self.clean / n if n else 0.0
        if k >= 3 and clean_frac >= 0.5:
            ep.hr_bpm = 60000.0 * k / s
            mean = s / k
            ep.sdnn_ms = (max(0.0, sq / k - mean * mean)) ** 0.5
            if nsd >= 2:
                ep.rmssd_ms = (ssd / nsd) ** 0.5
            ep.pwa_mean = self._pwa / m
            if ep.pwa_mean < _LOW_PERFUSION_PPM:
                flags |= ppgdefs.LOW_PERFUSION
        # 5-minute SDNN, pooled over the last 10 epochs' normal IBIs.
        j = self._sd_pos
        self._sd_n[j] = k if ep.hr_bpm is not None else 0
        self._sd_sum[j] = s if ep.hr_bpm is not None else 0
        self._sd_sq[j] = (sq // 16) if ep.hr_bpm is not None else 0
        self._sd_pos = (j + 1) % _SDNN_EPOCHS
        tn = sum(self._sd_n)
        if tn >= 20:
            ts = sum(self._sd_sum)
            tq = 16.0 * sum(self._sd_sq)
            mean = ts / tn
            ep.sdnn5_ms = (max(0.0, tq / tn - mean * mean)) ** 0.5
        # SpO2 by ratio of ratios from the clean samples.
        c = self.clean
        if (self.ac_red > 0 and self.ac_ir > 0 and c >= n // 2 and c > 0
                and self.dc_red > 0 and ep.hr_bpm is not None):
            r = (self.ac_red / self.dc_red) / (self.ac_ir / self.dc_ir)
            ep.r_ratio = r
            spo2 = self.spo2_a - self.spo2_b * r
            if spo2 > 100.0:
                spo2 = 100.0
            if spo2 >= 50.0:
                ep.spo2_pct = spo2
        # Signal quality 0-100: clean fraction times fraction of normal IBIs.
        norm_frac = k / m if m else 0.0
        ep.sqi = int(100 * clean_frac * norm_frac + 0.5) if ep.hr_bpm is not None else 0
        ep.flags = flags
        self.start(t_end_ms)
        return ep
