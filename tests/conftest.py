"""Shared test helpers: run code under the MicroPython unix port, on the virtual board or not."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from nightstand import paths

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def run_micropython(
    args: list[str],
    *,
    path: str,
    heapsize: str = "1M",
    cwd: Path | None = None,
    timeout: float = 300,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess:
    env = dict(os.environ, MICROPYPATH=path)
    return subprocess.run(
        [paths.micropython_bin(), "-X", f"heapsize={heapsize}", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )


def mp_plain_path(*extra: Path) -> str:
    """MICROPYPATH for pure firmware code: firmware/ and the given folders, no virtual board."""
    return ":".join([*(str(p) for p in extra), str(paths.FIRMWARE_DIR), ".frozen"])


@pytest.fixture
def mp_board(tmp_path):
    """Run a MicroPython script on the virtual board (virtual `machine`, `time`, `select`).

    Returns a callable(script_text, heapsize='1M') -> CompletedProcess. The script runs with the
    virtual clock set up at 2026-01-01T00:00Z and `world`, `machine` importable.
    """

    def run(
        script: str, heapsize: str = "1M", timeout: float = 300
    ) -> subprocess.CompletedProcess:
        prelude = (
            "import time, world, vasyncio\n"
            "time.setup(1767225600, -1, (1 << 30) - 5000)\n"
            "vasyncio.install()\n"
        )
        f = tmp_path / "board_script.py"
        f.write_text(prelude + script)
        return run_micropython(
            [str(f)], path=paths.micropython_path(TESTS), heapsize=heapsize, cwd=tmp_path,
            timeout=timeout,
        )

    return run


def check(proc: subprocess.CompletedProcess) -> str:
    """Assert a MicroPython run succeeded; return its stdout (shows both streams on failure)."""
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, f"micropython exited {proc.returncode}\n{out}\n{err}"
    return out
