"""Recorder: lifecycle, resume, retention (CPython on a temp dir) and power cuts on littlefs
(MicroPython unix port, virtual flash from host_tools/nightstand/sim/vboard/vflash.py)."""

import json
import os

from conftest import TESTS, check, mp_plain_path, run_micropython
from nightstand import paths
from nsdev.core import nightfile, vocab
from nsdev.recorder import Recorder

T0 = 1767225600
IBI = [1000 + (i * 37) % 90 for i in range(40)]
PWA = [1000 + (i * 53) % 120 for i in range(41)]


class FakeFree:
    def __init__(self, free):
        self.free = free

    def __call__(self, root):
        return self.free


def _night(rec, epochs, t=T0, beats=True):
    nid = rec.start_night(t, 3600)
    for e in range(epochs):
        rec.add_epoch(t + 30 * e, hr_bpm=60.0, temp_c=21.5, lamp_level=(0.0,))
        if beats:
            rec.add_beats(t + 30 * e, 250, IBI, PWA, 30)
        rec.flush()
    rec.end_night(t + 30 * epochs)
    return nid


def _decode(rec, nid):
    buf = bytearray(rec.night_size(nid))
    assert rec.read_night(nid, 0, len(buf), buf) == len(buf)
    return nightfile.decode(bytes(buf))


def test_night_round_trip_and_index(tmp_path):
    rec = Recorder(str(tmp_path / "data"), device_id="d1", free_fn=FakeFree(10 ** 9))
    nid = _night(rec, 5)
    d = _decode(rec, nid)
    assert d["skipped"] == [] and d["header"]["night_id"] == nid
    kinds = [r["type"] for r in d["records"]]
    assert kinds.count("epoch") == 5 and kinds.count("beats") == 5 and kinds[-1] == "night_end"
    assert d["records"][-1]["n_beats"] == 150
    rows = rec.list_nights()
    assert rows == [{"night_id": nid, "start_unix_s": T0, "size": rec.night_size(nid),
                     "acked": False, "closed": True, "open": False}]
    # A new recorder (reboot) reads the same index.
    rec2 = Recorder(str(tmp_path / "data"), free_fn=FakeFree(10 ** 9))
    assert rec2.list_nights() == rows and rec2.recover(T0 + 10 ** 5) is None
    assert json.loads((tmp_path / "data" / "index.json").read_text())["open"] is None


def test_beats_share_the_epoch_record_in_the_app_order(tmp_path):
    rec = Recorder(str(tmp_path / "data"), free_fn=FakeFree(10 ** 9))
    nid = rec.start_night(T0, 0)
    rec.add_epoch(T0, hr_bpm=60.0)
    assert rec.add_beats(T0, 250, IBI, PWA, 30)  # attached to the epoch
    assert rec.add_beats(T0 + 30, 0, IBI, PWA, 5)  # a second block: a record of its own
    rec.add_epoch(T0 + 30, hr_bpm=61.0)
    rec.add_event(T0 + 40, vocab.EV_BUTTON, (1, 0))
    assert rec.add_beats(T0 + 30, 100, IBI, None, 3)  # not right after the epoch
    rec.add_epoch(T0 + 60, hr_bpm=62.0)
    rec.flush()
    assert rec.add_beats(T0 + 60, 100, IBI, PWA, 4)  # the epoch is on flash already
    rec.flush()
    d = _decode(rec, nid)
    assert d["skipped"] == []
    recs = d["records"]
    assert [r["type"] for r in recs] == ["epoch", "beats", "beats", "epoch", "event", "beats",
                                         "epoch", "beats"]
    assert recs[0]["offset"] == recs[1]["offset"] and recs[1]["offset"] != recs[2]["offset"]
    assert abs(recs[1]["t_ms"][0] - 250) <= 2 and recs[1]["n"] == 30
    assert recs[7]["t_ms"][0] == 60100
    # Beat times at the default 4 ms resolution: never more than 2 ms off, no drift.
    t = 250
    for i, got in enumerate(recs[1]["t_ms"]):
        assert abs(got - t) <= 2
        t += IBI[i] if i < 29 else 0
    # A reboot counts the beats of both kinds of record.
    rec2 = Recorder(str(tmp_path / "data"), free_fn=FakeFree(10 ** 9))
    assert rec2.recover(T0 + 100) == nid and rec2.n_beats == 42 and rec2.n_epochs == 3


def test_resume_after_reboot_truncates_torn_tail(tmp_path):
    root = str(tmp_path / "data")
    rec = Recorder(root, free_fn=FakeFree(10 ** 9))
    nid = rec.start_night(T0, 0)
    for e in range(3):
        rec.add_epoch(T0 + 30 * e, hr_bpm=50.0)
        rec.flush()
    path = tmp_path / "data" / "nights" / f"{nid:08d}.ns"
    with open(path, "ab") as f:
        f.write(b"\x02\x30\x00\x01\x02")  # a torn record (as on a FAT card or the unix port)
    rec2 = Recorder(root, free_fn=FakeFree(10 ** 9))
    assert rec2.recover(T0 + 200, vocab.RESET_WATCHDOG) == nid
    rec2.add_epoch(T0 + 210, hr_bpm=51.0)
    rec2.flush()
    rec2.end_night(T0 + 240)
    d = _decode(rec2, nid)
    assert d["skipped"] == []
    ev = [r for r in d["records"] if r["type"] == "event"][0]
    assert ev["kind"] == vocab.EV_RESET and ev["values"] == [vocab.RESET_WATCHDOG, 200 - 60]
    epochs = [r for r in d["records"] if r["type"] == "epoch"]
    assert len(epochs) == 4 and epochs[-1]["flags"] & vocab.FLAG_RESUMED
    assert d["records"][-1]["n_epochs"] == 4


def test_retention_deletes_oldest_acked_never_unsynced(tmp_path):
    free = FakeFree(10 ** 9)
    rec = Recorder(str(tmp_path / "data"), free_fn=free, low_free_bytes=1000,
                   beats_min_free_bytes=500)
    ids = [_night(rec, 2, T0 + 86400 * i) for i in range(4)]
    assert rec.ack_night(ids[1]) and rec.ack_night(ids[2])
    assert not rec.ack_night(999)
    free.free = 10  # flash low: both acked nights go, oldest first; unsynced ones stay
    _night(rec, 1, T0 + 86400 * 5)
    assert rec.deleted == [ids[1], ids[2]]
    assert rec.night_ids()[:2] == [ids[0], ids[3]]
    assert rec.night_size(ids[0]) > 0 and rec.night_size(ids[1]) == -1


def test_full_of_unsynced_drops_beats_and_flags_it(tmp_path):
    free = FakeFree(10 ** 9)
    rec = Recorder(str(tmp_path / "data"), free_fn=free, low_free_bytes=1000,
                   beats_min_free_bytes=500, check_every=1)
    nid = rec.start_night(T0, 0)
    for e in range(6):
        if e == 2:
            free.free = 100  # nothing acked to delete
        rec.add_epoch(T0 + 30 * e, hr_bpm=60.0)
        rec.add_beats(T0 + 30 * e, 0, IBI, PWA, 30)
        rec.flush()
    rec.end_night(T0 + 180)
    d = _decode(rec, nid)
    recs = d["records"]
    assert sum(r["type"] == "epoch" for r in recs) == 6  # epochs kept
    assert sum(r["type"] == "beats" for r in recs) == 3  # beats stopped after the check
    assert [r for r in recs if r["type"] == "epoch"][-1]["flags"] & vocab.FLAG_BEATS_DROPPED
    evs = [r for r in recs if r["type"] == "event" and r["kind"] == vocab.EV_BEATS_DROPPED]
    assert evs and evs[-1]["values"] == [90, 3]
    assert recs[-1]["n_beats_dropped"] == 90


def test_buffer_full_counts_loss_never_raises(tmp_path):
    rec = Recorder(str(tmp_path / "data"), free_fn=FakeFree(10 ** 9), buf_bytes=256)
    rec.start_night(T0, 0)
    stored = [rec.add_epoch(T0 + 30 * e, hr_bpm=60.0) for e in range(40)]
    assert stored[0] and not stored[-1] and rec.lost_records > 0
    assert not rec.add_beats(T0, 0, [0], None, 2)  # bad IBI: refused, counted
    assert rec.flush() > 0 and rec.pending_bytes() == 0


def _mp(script_args, tmp_path, heapsize="1M"):
    return run_micropython(
        [str(TESTS / "firmware" / "mp_powercut.py"), str(tmp_path), *script_args],
        path=mp_plain_path(paths.VBOARD_DIR), heapsize=heapsize, cwd=tmp_path, timeout=120)


def test_power_cuts_on_littlefs(tmp_path):
    out = check(_mp(["100", "12345", "40", "400"], tmp_path))
    res = json.loads(out.strip().splitlines()[-1])
    assert res["cuts"] >= 100
    assert res["nights_damaged"] == 0 and res["formatted"] == 0
    assert res["max_epochs_lost"] <= 1
    assert res["resumed"] > 50 and res["nights"] >= 10


def test_power_cuts_with_torn_writes(tmp_path):
    """Cuts tear a write at a random byte or an erase at a random offset of its sector; every
    night on the image is checked after every cut (the rule: 0 damaged, <= 1 epoch lost, 0
    reformats). tests/bench/bench_flash.py runs the same with 1000 cuts."""
    out = check(_mp(["40", "777", "20", "300", "torn"], tmp_path))
    res = json.loads(out.strip().splitlines()[-1])
    assert res["cuts"] >= 40
    assert res["nights_damaged"] == 0 and res["max_epochs_lost"] <= 1
    assert res["formatted"] == 0


def test_no_flash_step_erases_two_sectors(tmp_path):
    """The app writes a flush in steps with a FIFO read between them; a W25Q32 sector erase
    takes up to 400 ms and the MAX30102 FIFO holds 640 ms, so no step may erase twice. Before
    flush_write stopped at the end of the file's flash block, an append that crossed it
    erased the new block and the next in one call (docs/simulation.md, "Honest time")."""
    out = check(run_micropython(
        [str(TESTS / "firmware" / "mp_flash_erases.py"), str(tmp_path), "200"],
        path=mp_plain_path(paths.VBOARD_DIR), heapsize="1M", cwd=tmp_path, timeout=120))
    res = json.loads(out.strip().splitlines()[-1])
    assert res["split_flushes"] >= 1  # the night crossed flash blocks
    assert res["write_max"] == 1 and res["commit_max"] <= 1, res
    assert res["epochs"] == 200 and res["skipped"] == 0  # split writes join into whole records
    # night start and end in steps (the index rewritten, a file created or closed): before,
    # ending a night erased twice in one call once the index had outgrown its directory entry
    assert res["nights"] == 9 and res["night_step_max"] == 1, res


def test_vflash_image_persists(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(
        "import vflash, os\n"
        "sim = os.getcwd()\n"
        "d = vflash.mount_flash(sim, 256 * 1024)\n"
        "with open('x', 'w') as f:\n    f.write('hi')\n"
        "vflash.mount_flash(sim, 256 * 1024)\n"
        "print(open('x').read(), os.statvfs('.')[2])\n")
    out = check(run_micropython([str(script)], path=mp_plain_path(paths.VBOARD_DIR),
                                cwd=tmp_path))
    assert out.split()[-2:] == ["hi", "64"]
    assert os.path.getsize(tmp_path / "flash.img") == 256 * 1024


BAD_INDEXES = [b"[1]", b'{"v":1}', b'{"v":1,"next_id":"2","open":null,"nights":[]}',
               b'{"v":1,"next_id":2,"open":"x","nights":[]}',
               b'{"v":1,"next_id":2,"open":null,"nights":[[1,2]]}',
               b'{"v":1,"next_id":2,"open":null,"nights":{"1":1}}',
               b'{"v":1,"next_id":1e400,"open":null,"nights":[]}',
               b'{"v":1,"next_id":123456789012,"open":null,"nights":[]}',
               b'{"v":1,"next_id":2,"open":null,"nights":[[1,0,true,1],[1,0,0,1]]}',
               b"null", b"", b"\xff\xfe\x00garbage", b'"text"', b"{" * 50]


def test_index_of_any_shape_is_rebuilt_from_the_night_files(tmp_path):
    root = tmp_path / "data"
    rec = Recorder(str(root), free_fn=FakeFree(10 ** 9))
    assert rec.repairs == []  # a new device: nothing to repair
    closed = [_night(rec, 2, T0 + 86400 * i) for i in range(2)]
    assert rec.ack_night(closed[0])
    open_id = rec.start_night(T0 + 3 * 86400, 0)
    rec.add_epoch(T0 + 3 * 86400, hr_bpm=55.0)
    rec.flush()
    for bad in BAD_INDEXES:
        (root / "index.json").write_bytes(bad)
        rec2 = Recorder(str(root), free_fn=FakeFree(10 ** 9))
        assert len(rec2.repairs) == 1 and "index.json" in rec2.repairs[0], bad
        rows = {r["night_id"]: r for r in rec2.list_nights()}
        assert sorted(rows) == closed + [open_id], bad
        # Closed nights are offered to the host again (acks re-established by it); the open
        # night is resumed and the next id continues after the newest file.
        assert all(rows[n]["closed"] and not rows[n]["acked"] for n in closed), bad
        assert not rows[open_id]["closed"]
        assert rec2.recover(T0 + 3 * 86400 + 100) == open_id
        assert rec2.start_night(T0 + 4 * 86400, 0) == open_id + 1
        d = _decode(rec2, open_id)
        assert d["skipped"] == [] and d["records"][-1]["type"] == "night_end", bad
        rec2.end_night(T0 + 4 * 86400 + 60)
        for name in os.listdir(root / "nights"):  # back to the three nights, night 3 open
            if int(name[:8]) > open_id:
                os.remove(root / "nights" / name)
        data = (root / "nights" / f"{open_id:08d}.ns").read_bytes()
        end = data.rindex(bytes([vocab.REC_NIGHT_END]))
        (root / "nights" / f"{open_id:08d}.ns").write_bytes(data[:end])
    # The rebuilt index is written back: the next boot has nothing to repair.
    (root / "index.json").write_bytes(b"[1]")
    Recorder(str(root), free_fn=FakeFree(10 ** 9))
    assert Recorder(str(root), free_fn=FakeFree(10 ** 9)).repairs == []


def test_night_files_with_odd_names_or_no_folder_do_not_stop_boot(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "nights").write_bytes(b"not a folder")
    rec = Recorder(str(root), free_fn=FakeFree(10 ** 9))
    assert any("nights was not a folder" in r for r in rec.repairs)
    assert (root / "nights.bad").read_bytes() == b"not a folder"
    (root / "nights" / "-0000001.ns").write_bytes(b"x")
    (root / "nights" / "00000007.ns").write_bytes(os.urandom(300))  # random bytes, no header
    rec = Recorder(str(root), free_fn=FakeFree(10 ** 9))
    assert rec.night_ids() == [7]
    assert rec.start_night(T0, 0) == 8 and rec.add_epoch(T0, hr_bpm=50.0) and rec.flush() > 0


def test_data_folder_that_is_a_file_is_kept_aside(tmp_path):
    (tmp_path / "data").write_bytes(b"\x00" * 10)
    rec = Recorder(str(tmp_path / "data"), free_fn=FakeFree(10 ** 9))
    assert any("data was not a folder" in r for r in rec.repairs)
    assert (tmp_path / "data.bad").exists()
    assert rec.start_night(T0, 0) == 1 and rec.add_epoch(T0, hr_bpm=50.0) and rec.flush() > 0


def test_unfinished_tmp_night_files_are_removed_at_boot(tmp_path):
    root = tmp_path / "data"
    rec = Recorder(str(root), free_fn=FakeFree(10 ** 9))
    nid = _night(rec, 2)
    (root / "nights" / f"{nid + 1:08d}.ns.tmp").write_bytes(b"NSN1" + bytes(40))  # cut
    (root / "nights" / f"{nid:08d}.ns.tmp").write_bytes(b"half a copy")  # cut truncating
    rec2 = Recorder(str(root), free_fn=FakeFree(10 ** 9))
    assert sorted(os.listdir(root / "nights")) == [f"{nid:08d}.ns"]
    assert rec2.night_ids() == [nid] and rec2.repairs == []
