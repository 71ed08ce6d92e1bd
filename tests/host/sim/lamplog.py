"""The light the virtual lamp really gave, from the PWM duty it saw (vboard/vlamp.py logs), for
tests that check the lamp's melanopic caps without trusting the controller's model of itself."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_REC = "<IQ"  # (second since start, mean duty_u16 * 2**16 over that second), run-length


def duty_per_second(log: Path, n_s: int) -> np.ndarray:
    """Mean PWM duty (0..1 of full scale) for each second 0..n_s-1 of the run."""
    out = np.zeros(n_s)
    data = log.read_bytes()
    size = struct.calcsize(_REC)
    recs = [struct.unpack_from(_REC, data, i) for i in range(0, len(data) - size + 1, size)]
    for k, (sec, q) in enumerate(recs):
        end = recs[k + 1][0] if k + 1 < len(recs) else n_s
        out[min(sec, n_s):min(end, n_s)] = q / 65536 / 65535
    return out


def mel_edi_per_second(sim_dir: Path, cfg: dict, n_s: int) -> np.ndarray:
    """Melanopic EDI (lx) at the eye each second: PWM duty x the lamp's full output at the eye
    (its calibration in cfg) x its melanopic DER. LED light under PWM is proportional to duty."""
    warm = duty_per_second(sim_dir / "lamp_warm.log", n_s)
    amber = duty_per_second(sim_dir / "lamp_amber.log", n_s)
    return (warm * cfg["warm_full_lux_at_eye"] * cfg["warm_der"]
            + amber * cfg["amber_full_lux_at_eye"] * cfg["amber_der"])
