"""tests/host/synth.py (synthetic nights) is importable as `synth` from every host test folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
