"""The hardware-in-the-loop suite: `make hil PORT=/dev/ttyUSB0` (a real board) or `PORT=virtual`
(the simulated board behind a pty). Without --board every test here is skipped with one reason.
Each check records its figures; the controller writes the one-page report (--hil-report)."""

from __future__ import annotations

import datetime as dt
import html
import json
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parent))  # checks.py, hilboard.py

from hilboard import VIRTUAL, HilBoard, Result  # noqa: E402

NO_BOARD = "no board: make hil PORT=/dev/ttyUSB0 (a real one) or PORT=virtual"


@pytest.fixture(scope="session")
def board_port(request) -> str:
    port = request.config.getoption("--board")
    if not port:
        pytest.skip(NO_BOARD)
    return port


@pytest.fixture(scope="session")
def board(board_port, tmp_path_factory):
    if board_port == VIRTUAL:
        b = HilBoard.open_virtual(tmp_path_factory.mktemp("vboard"))
    else:
        b = HilBoard(board_port)
    yield b
    b.close()


@pytest.fixture
def report(request):
    """report(results): record them for the bring-up page, then assert they all passed."""

    def _report(results: list[Result]) -> None:
        for r in results:
            request.node.user_properties.append(("hil", json.dumps(r.__dict__, default=str)))
        bad = [r for r in results if not r.ok]
        assert not bad, "; ".join(f"{r.check}: {r.value} (limit {r.limit}) {r.note}".strip()
                                  for r in bad)

    return _report


_rows: list[dict] = []


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.skipped):
        for name, value in report.user_properties:
            if name == "hil":
                _rows.append(json.loads(value))


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--hil-report")
    if not path or hasattr(session.config, "workerinput") or not _rows:
        return
    port = session.config.getoption("--board")
    write_report(Path(path), port, _rows)


def write_report(path: Path, port: str, rows: list[dict]) -> None:
    """One page a technician can file: every figure, its limit and the verdict."""
    from nsdev import VERSION

    ok = all(r["ok"] for r in rows)
    body = "".join(
        "<tr class='{c}'><td>{check}</td><td>{value}</td><td>{limit}</td><td>{v}</td>"
        "<td>{note}</td></tr>".format(
            c="ok" if r["ok"] else "bad", v="pass" if r["ok"] else "FAIL",
            **{k: html.escape(str(r.get(k, ""))) for k in ("check", "value", "limit", "note")})
        for r in rows)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8">
<title>nightstand bring-up {html.escape(port)}</title><style>
body{{font:14px sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:3px 8px;text-align:left}} .bad{{background:#fcc}}
</style></head><body><h1>nightstand bring-up: {"PASS" if ok else "FAIL"}</h1>
<p>board {html.escape(port)} &middot; firmware {VERSION} &middot; {stamp} &middot;
{sum(r['ok'] for r in rows)}/{len(rows)} checks passed</p>
<table><tr><th>check</th><th>measured</th><th>limit</th><th>verdict</th><th>note</th></tr>
{body}</table><p>Tested by: ____________ &nbsp; Unit serial: ____________</p></body></html>
""")
