"""One sync run: download every night the store lacks (resuming partial files), verify it
against the device's CRC, commit it to the store, and only then acknowledge it to the device."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from nightstand.store import Store
from nightstand.sync.client import Client, Night


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
    part = store.partial_path(dev, n.night_id)
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
        mode = "r+b" if part.exists() else "w+b"
        with open(part, mode) as f:
            part.chmod(0o600)

            def sink(offset: int, data: bytes, f=f) -> None:
                f.seek(offset)
                f.write(data)
                f.flush()

            got += client.download(n.night_id, n.size, sink, start=have, progress=progress)
            f.truncate(n.size)
        size, crc = client.night_crc(n.night_id)
        if size == n.size and zlib.crc32(part.read_bytes()) == crc:
            store.commit_night(dev, n.night_id, part, crc, n.start_unix_s or None)
            client.ack_night(n.night_id, size, crc)  # only after the store committed
            store.mark_acked(dev, n.night_id)
            return got
        # A stale resumed prefix (or a changed night): start this night over once.
        part.unlink()
        have = 0
        if attempt == 1:
            raise ValueError(f"night {n.night_id} does not verify against the device's CRC")
    return got
