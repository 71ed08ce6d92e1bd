"""Night reports and the trends page: self-contained HTML (opens offline) plus a shareable PNG of
the heart-rate/HRV/arousal panel. Pages: docs/reports-and-exports.md."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

from nightstand import journal as journal_mod
from nightstand.errors import UserError
from nightstand.report.metrics import build_grid, hyperarousal_for, load_night, night_metrics
from nightstand.report.trends import add_sleep, bedtime_sd_min, compare, trend_rows
from nightstand.store import Store, StoreDamaged

__all__ = ["night_file_stem", "prepare_out_dir", "write_night_report", "write_night_reports",
           "write_trends_report"]


def prepare_out_dir(out_dir: Path | str) -> Path:
    """Create the output folder, or UserError if it cannot be written."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the output folder {out}: {e.strerror}") from None
    if not out.is_dir() or not os.access(out, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to the output folder {out}: choose another with --out")
    return out


def _write(path: Path, data: bytes | str) -> None:
    try:
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None


def night_file_stem(date_iso: str, row_id: int) -> str:
    return f"night-{date_iso}-{row_id}"


def write_night_report(store: Store, row_id: int, out_dir: Path | str) -> Path:
    """Write night-<date>-<id>.html and night-<date>-<id>-main.png into out_dir; returns the HTML
    path. Raises UserError (no such night, unwritable folder)."""
    from nightstand.report import figures, pages  # matplotlib: only when a page is written

    out = prepare_out_dir(out_dir)
    nd, _night = load_night(store, row_id)
    g = build_grid(nd.epochs)
    m = night_metrics(nd, g)
    m["presleep"] = hyperarousal_for(store, nd, m.get("lights_out_unix_s"))
    add_sleep(store, nd, g, m)
    stem = night_file_stem(nd.night_date().isoformat(), row_id)
    main_png = figures.png_bytes(figures.main_figure(nd, g, m))
    detail_png = figures.png_bytes(figures.detail_figure(nd, g, m))
    png_path = out / f"{stem}-main.png"
    _write(png_path, main_png)
    html_path = out / f"{stem}.html"
    from nightstand.report import circadian

    _write(html_path, pages.night_page(nd, m, main_png, detail_png, png_path.name,
                                       circadian.night_html(store, nd.device_id, nd.night_id)))
    return html_path


def write_night_reports(store: Store, row_ids: list[int],
                        out_dir: Path | str) -> tuple[list[Path], list[str]]:
    """Write the report of each night, going on past a night that cannot be reported (damaged
    raw file, ...). -> (pages written, one "night ID: why" per night that failed). A problem
    that would fail every night (the output folder, the store itself) is raised at once."""
    prepare_out_dir(out_dir)
    return each_night(row_ids, lambda row_id: [write_night_report(store, row_id, out_dir)],
                      draw_errors=True)


def each_night(row_ids: list[int], write: Callable[[int], list[Path]], *,
               draw_errors: bool = False) -> tuple[list[Path], list[str]]:
    """Run `write` for each night, going on past one that fails (the batch commands: report
    --all, export of several nights). -> (files written, one "night ID: why" per failure).
    A single night's error, and a damaged store (every night would fail), are raised."""
    written: list[Path] = []
    failed: list[str] = []
    for row_id in row_ids:
        try:
            written += write(row_id)
        except StoreDamaged:
            raise
        except UserError as e:
            if len(row_ids) == 1:
                raise
            failed.append(f"night {row_id}: {e}")
        except (ValueError, ArithmeticError, IndexError, KeyError, RuntimeError) as e:
            # data this night holds that the report code cannot draw: the other nights go on
            if len(row_ids) == 1 or not draw_errors:
                raise
            failed.append(f"night {row_id}: cannot be reported ({type(e).__name__}: "
                          f"{''.join(str(e).splitlines()[:1])[:120]})")
    return written, failed


def batch_error(failed: list[str], total: int) -> UserError:
    """One line for a batch that went on past failed nights."""
    return UserError(f"{len(failed)} of {total} nights failed ({'; '.join(failed)}); the others "
                     "were written")


def write_trends_report(store: Store, out_dir: Path | str,
                        compare_entry: int | None = None) -> Path:
    """Write trends.html into out_dir (all decoded nights; journal entries marked; nights before
    vs after `compare_entry`, default the latest entry). Returns its path."""
    from nightstand.report import figures, pages

    out = prepare_out_dir(out_dir)
    rows = trend_rows(store)
    entries = journal_mod.entries(store)
    entry = (journal_mod.get_entry(store, compare_entry) if compare_entry is not None
             else (max(entries, key=lambda e: (e.date, e.id)) if entries else None))
    cmp = None
    if entry is not None:
        table, info = compare(rows, entry, entries)
        cmp = (entry, table, info)
    png = figures.png_bytes(figures.trends_figure(
        rows, entries, None if entry is None else dt.date.fromisoformat(entry.date)))
    links = {}
    for r in rows:
        name = f"{night_file_stem(r['date'], r['row_id'])}.html"
        if (out / name).exists():
            links[r["row_id"]] = name
    path = out / "trends.html"
    from nightstand.report import circadian

    _write(path, pages.trends_page(rows, png, entries, cmp, bedtime_sd_min(rows), links,
                                   circadian.section(store, rows)))
    return path
