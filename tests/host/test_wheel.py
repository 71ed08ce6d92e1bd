"""The host tools as a user installs them: build the wheel, install it (not editable) into a fresh
virtual environment, and run `nightstand` from there."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from nsdev import VERSION

ROOT = Path(__file__).resolve().parents[2]

# Run inside the fresh environment: every module imports, and the files the simulator and
# `nightstand deploy` read come from the installed package, not from this checkout.
_CHECK = r"""
import importlib, pkgutil, sys
from pathlib import Path
import nightstand, nsdev
root = Path(sys.argv[1]).resolve()
import nsdev.core
for pkg in (nightstand, nsdev, nsdev.core):  # not nsdev.board: `machine` is the board's
    assert root not in Path(pkg.__file__).resolve().parents, pkg.__file__
    if pkg is not nsdev:
        for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if not m.name.rsplit(".", 1)[-1].startswith("mp_"):  # MicroPython scripts
                importlib.import_module(m.name)
import nightstand.report, nightstand.sync.engine  # noqa: F401  (report/export/sync need them)
from nightstand import paths
files = dict(paths.firmware_files())
assert root not in files["main.py"].resolve().parents, files["main.py"]
assert "nsdev/app.py" in files and "nsdev/core/proto.py" in files
for name in ("simboot.py", "machine.py", "vmax30102.py", "time.py", "select.py"):
    assert (paths.VBOARD_DIR / name).is_file(), name
assert (paths.SCENARIO_DIR / "default.json").is_file()
from nightstand.sim.scenario import default_scenario
default_scenario()
print("installed ok", len(files))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    # Build isolation fetches the pinned setuptools from the index, as `pip install .` does.
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
         "--disable-pip-version-check", "-w", str(tmp / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    wheels = list((tmp / "dist").glob("nightstand-*.whl"))
    assert len(wheels) == 1, wheels
    assert wheels[0].name.startswith(f"nightstand-{VERSION}-"), wheels[0].name
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    inst = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--quiet",
         "--disable-pip-version-check", str(wheels[0])],
        capture_output=True, text=True, timeout=300,
    )
    assert inst.returncode == 0, inst.stdout + inst.stderr
    # The pinned dependencies come from this test run's environment (after the new package in
    # sys.path; a path line in a .pth file does not run the editable install's finder).
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return env_dir


def _run(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{env_dir / 'bin'}{os.pathsep}{Path(sys.executable).parent}"
               f"{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTHONPATH", None)
    return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)


def test_wheel_gives_a_working_cli(installed: Path, tmp_path: Path) -> None:
    exe = str(installed / "bin" / "nightstand")
    ver = _run(installed, exe, "--version", cwd=tmp_path)
    assert ver.returncode == 0, ver.stderr
    assert ver.stdout.strip() == f"nightstand {VERSION}"
    helped = _run(installed, exe, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    for command in ("simulate", "sync", "status", "report", "export", "journal", "deploy",
                    "flash", "vboard"):
        assert command in helped.stdout, command
    db = str(tmp_path / "store" / "s.sqlite3")
    added = _run(installed, exe, "journal", "add", "2026-01-15", "started magnesium", "--db", db,
                 cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    nights = _run(installed, exe, "nights", "--db", db, cwd=tmp_path)
    assert nights.returncode == 0, nights.stderr
    assert "no nights stored yet" in nights.stdout
    for command in ("plan", "store"):
        assert command in helped.stdout, command


def test_wheel_ships_firmware_and_simulator_files(installed: Path, tmp_path: Path) -> None:
    check = _run(installed, str(installed / "bin" / "python"), "-c", _CHECK, str(ROOT),
                 cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("installed ok")
