"""One sync run: download every night the store lacks (resuming partial files), verify it
against the device's CRC, commit it to the store, and only then acknowledge it to the device."""

from __future__ import annotations

import errno
import os
import sqlite3
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from nightstand.errors import UserError
from nightstand.store import Store
from nightstand.sync.client import Client, Night


def local_error(path: Path, e: OSError) -> UserError:
    """A failure of this computer's disk, said as such (not blamed on the device or the link)."""
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return UserError(f"the disk holding {path} is full: free some space and sync again "
                         "(nothing was acknowledged, the device keeps its nights)")
    if e.errno == errno.EROFS:
        return UserError(f"{path} is on a read-only disk: give a writable --db")
    return UserError(f"cannot write {path}: {e.strerror or e}: check the store folder, then sync "
                     "again (nothing was acknowledged)")


def _open_part(part: Path) -> BinaryIO:
    """The partial download file, created private (0600); a folder or link in its place is
    named as what it is, not blamed on the device."""
    if part.is_symlink() or (part.exists() and not part.is_file()):
        what = "a folder" if part.is_dir() else "not a regular file"
        raise UserError(f"{part} is {what}, in the way of a download: move it out of the store, "
                        "then sync again")
    try:
        fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o600)
        return os.fdopen(fd, "r+b")
    except OSError as e:
        raise local_error(part, e) from None


@dataclass
class SyncReport:
    device_id: str = ""
    on_device: int = 0
    downloaded: list[int] = field(default_factory=list)
    reacked: list[int] = field(default_factory=list)
    already: int = 0
    skipped_open: int = 0
    conflicts: list[int] = field(default_factory=list)
    bytes: int = 0
    resumed_bytes: int = 0
    plan: str | None = None  # the circadian plan's step at this sync (None: nothing changed)


def sync_device(
    client: Client,
    store: Store,
    address: str,
    *,
    set_time: bool = True,
    apply_plan: bool = True,
    start: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> SyncReport:
    hello = client.connect()
    dev = hello["device_id"]
    rep = SyncReport(device_id=dev)
    store.save_device(dev, firmware_version=hello["firmware_version"], address=address)
    if set_time:
        client.set_time()
    nights = client.list_nights()
    rep.on_device = len(nights)
    rep.skipped_open = sum(1 for n in nights if n.open)
    have = store.stored(dev)
    todo = [n for n in nights if not n.open and n.night_id not in have]
    rep.already = sum(1 for n in nights if n.night_id in have)

    # Acknowledgements lost in an earlier run: the stored copy must match the device's.
    for n in nights:
        if n.night_id in have and not n.acked and not n.open:
            size, crc, _acked = have[n.night_id]
            if client.night_crc(n.night_id) == (size, crc):
                client.ack_night(n.night_id, size, crc)
                store.mark_acked(dev, n.night_id)
                rep.reacked.append(n.night_id)
            else:
                rep.conflicts.append(n.night_id)

    partial = {n.night_id: _part_size(store, dev, n) for n in todo}
    if start:
        start(sum(n.size - partial[n.night_id] for n in todo))
    for n in todo:
        rep.resumed_bytes += partial[n.night_id]
        rep.bytes += _fetch(client, store, dev, n, partial[n.night_id], progress)
        rep.downloaded.append(n.night_id)
    if apply_plan:  # after the downloads: the newest night informs the phase estimate
        from nightstand import planning

        step = planning.apply_at_sync(client, store, dev)
        if step is not None and step.changes:
            rep.plan = (f"{step.reason}: bedtime {step.bedtime} (wind-down from "
                        f"{step.winddown_start}), wake {step.wake} (dawn from {step.dawn_start})")
    return rep


def _part_size(store: Store, dev: str, n: Night) -> int:
    try:
        part = store.partial_path(dev, n.night_id)
    except OSError as e:
        raise local_error(store.root / "raw", e) from None
    if part.is_symlink() or (part.exists() and not part.is_file()):
        _open_part(part).close()  # raises: says what is in the way
    if not part.exists():
        return 0
    size = part.stat().st_size
    if size > n.size:
        part.unlink()
        return 0
    return size


def _fetch(client: Client, store: Store, dev: str, n: Night, have: int,
           progress: Callable[[int], None] | None) -> int:
    part = store.partial_path(dev, n.night_id)
    got = 0
    for attempt in range(2):
        with _open_part(part) as f:

            def sink(offset: int, data: bytes, f=f) -> None:
                try:
                    f.seek(offset)
                    f.write(data)
                    f.flush()
                except OSError as e:
                    raise local_error(part, e) from None

            got += client.download(n.night_id, n.size, sink, start=have, progress=progress)
            try:
                f.truncate(n.size)
            except OSError as e:
                raise local_error(part, e) from None
        size, crc = client.night_crc(n.night_id)
        if size == n.size and zlib.crc32(part.read_bytes()) == crc:
            try:
                store.commit_night(dev, n.night_id, part, crc, n.start_unix_s or None)
            except OSError as e:
                raise local_error(part, e) from None
            except sqlite3.OperationalError as e:
                if "full" not in str(e):
                    raise
                raise local_error(store.db_path, OSError(errno.ENOSPC, str(e))) from None
            client.ack_night(n.night_id, size, crc)  # only after the store committed
            store.mark_acked(dev, n.night_id)
            return got
        # A stale resumed prefix (or a changed night): start this night over once.
        part.unlink()
        have = 0
        if attempt == 1:
            raise ValueError(f"night {n.night_id} does not verify against the device's CRC")
    return got
