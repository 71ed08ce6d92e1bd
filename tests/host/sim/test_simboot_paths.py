"""simboot makes the flash folder where it was asked, leaving no stray tree in the run folder."""

from __future__ import annotations

from conftest import run_micropython
from nightstand import paths


def test_mkdirs_keeps_an_absolute_path_absolute(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    target = tmp_path / "elsewhere" / "sim" / "flash"
    script = tmp_path / "mk.py"
    script.write_text(f"import simboot\nsimboot._mkdirs({str(target)!r})\n"
                      "simboot._mkdirs('rel/flash')\n")
    res = run_micropython([str(script)], path=paths.micropython_path(), cwd=run_dir, timeout=60)
    assert res.returncode == 0, res.stderr
    assert target.is_dir()
    # only the relative folder asked for: no copy of the absolute path under the run folder
    assert sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")) == ["rel",
                                                                             "rel/flash"]
