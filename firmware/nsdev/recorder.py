# Night recorder: buffers night-format records in RAM, appends them to one file per night on flush,
# keeps a crash-safe night index (write-then-rename), resumes after a reboot and applies retention.
# Uses only `open` and `os` (littlefs on the device, the unix port or CPython in tests).
import json
import os
from array import array

from nsdev import compat
from nsdev.compat import const, write_atomic
from nsdev.core import nfcodec, nfencode, vocab

_ENOSPC = 28
_BOOT_CLOCK_FILE = "boot_clock.json"  # ids of the nights on this power-on's boot clock
_MIN_WALL_UNIX_S = 978307200  # 2001-01-01: below it a time is the boot clock (from 2000)
_SCRATCH = vocab.MAX_PAYLOAD + vocab.FRAME_OVERHEAD
_END_TAIL = 64  # a NIGHT_END record (six varints) is always shorter than this
# The RAM record buffer holds what one epoch adds before the storage task flushes it: at most
# ~1.9 KB at a night's start (header 188 B + the 16 events queued before it, <= ~80 B each +
# an epoch with 128 beats, <= 381 B), a few hundred bytes in any other epoch. 2 KiB, not the
# 4 KiB it was: the ESP32's first heap is 56 KiB (docs/twin-and-image.md); while the flash
# refuses writes it still keeps ~4 worst-case (~10 typical) epochs before records are lost.
_BUF_BYTES = const(2048)


_MAX_ID = const(99999999)  # night ids are 8 decimal digits in the file name
_MAX_U32 = 0xFFFFFFFF


def _is_int(v, low=0, high=_MAX_U32):
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _read_index(path):
    """-> (index, None) when index.json is present and well formed, else (None, why)."""
    try:
        with open(path) as f:
            idx = json.load(f)
    except OSError:
        return None, "missing"
    except Exception:  # ValueError, UnicodeError, or whatever the bytes make of the parser
        return None, "unreadable"
    if not isinstance(idx, dict) or idx.get("v") != 1:
        return None, "not a version-1 index"
    if not _is_int(idx.get("next_id"), 1, _MAX_ID + 1):
        return None, "next_id invalid"
    op = idx.get("open")
    if op is not None and not _is_int(op, 1, _MAX_ID):
        return None, "open invalid"
    rows = idx.get("nights")
    if not isinstance(rows, list):
        return None, "nights invalid"
    seen = set()
    for row in rows:
        if not (isinstance(row, list) and len(row) == 4 and _is_int(row[0], 1, _MAX_ID)
                and _is_int(row[1]) and row[2] in (0, 1) and row[3] in (0, 1)
                and not isinstance(row[2], bool) and not isinstance(row[3], bool)
                and row[0] not in seen):
            return None, "night row invalid"
        seen.add(row[0])
    return {"v": 1, "next_id": idx["next_id"], "open": op, "nights": rows}, None


def _statvfs_free(root):
    st = os.statvfs(root)
    if st[4] > st[2]:  # littlefs can report f_bavail > f_blocks when completely full
        return 0
    return st[0] * st[4]  # f_bsize * f_bavail


def _mkdir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass  # exists


def _atomic_steps(path, data):
    # compat.write_atomic in steps of at most one erase each: the data (a new block once it
    # outgrows the directory), the file's commit, the rename's commit (each may compact).
    tmp = path + ".tmp"
    f = open(tmp, "wb" if isinstance(data, (bytes, bytearray, memoryview)) else "w")
    try:
        f.write(data)
        yield 1
    finally:
        f.close()
    yield 1
    os.rename(tmp, path)


class Recorder:
    """One file set per night under `root`:
        root/nights/NNNNNNNN.ns   the night file (docs/night-format.md), NNNNNNNN = night id
        root/index.json           night index, replaced atomically (index.json.tmp, renamed)
    Records are encoded into a fixed RAM buffer by add_*(), which never touch the flash; flush()
    (called by the storage task at least once per epoch) appends them to the file."""

    def __init__(self, root="data", device_id="", fw_version="", sensor_config="",
                 epoch_s=vocab.EPOCH_S, buf_bytes=_BUF_BYTES, free_fn=None,
                 low_free_bytes=160 * 1024,
                 beats_min_free_bytes=64 * 1024, check_every=10, ibi_res_ms=vocab.IBI_RES_MS,
                 pwa_shift=vocab.PWA_SHIFT):
        self.root = root
        self.device_id = device_id
        self.fw_version = fw_version
        self.sensor_config = sensor_config
        self.epoch_s = epoch_s
        self.low_free_bytes = low_free_bytes
        self.beats_min_free_bytes = beats_min_free_bytes
        self.check_every = check_every
        self._free_fn = free_fn or _statvfs_free
        self.ibi_res_ms = ibi_res_ms  # beat-time resolution stored (1, 2, 4 or 8 ms)
        self.pwa_shift = pwa_shift  # per-beat amplitude step = block maximum >> pwa_shift
        self._buf = bytearray(buf_bytes)
        self._n = 0
        # The last EPOCH record while it is still the last record in the buffer: add_beats
        # attaches the epoch's beat stream to it (one frame and one CRC for both).
        self._mark = array("i", [0, 0, 0])
        self._ep_end = -1
        self._ep_t_off_s = 0
        self._file = None
        self._scratch = None
        self.night_id = None  # the open night, or None
        self.start_unix_s = 0
        self.beats_dropping = False
        self.lost_records = 0  # records not stored (RAM buffer full, bad input, write failure)
        self.lost_bytes = 0
        self.write_errors = 0
        self.deleted = []  # night ids removed by retention since boot
        self._flushes = 0
        self._written = 0  # bytes handed to the file by flush_write, not yet committed
        self._size = 0  # bytes in the open night file (committed + handed over)
        self._blk_end = 0  # file size at which its current flash block is full (_block_room)
        self._blk_n = 0  # index of the block after that one
        self._bsize = 0  # the file system's block size (statvfs), once known
        self._closing = False  # end_night_steps: NIGHT_END is in, nothing may follow it
        self._index_busy = False  # _write_index_steps is under way
        self._index_again = False  # and the index changed meanwhile
        self._reset_counts()
        self.repairs = []  # what was wrong with the stored state at boot and how it was fixed
        self._folder(root)
        self._load_index()

    # ---- paths and index ----------------------------------------------------------------

    def _path(self, night_id):
        return "%s/nights/%08d.ns" % (self.root, night_id)

    def _reset_counts(self):
        self.n_epochs = 0
        self.n_events = 0
        self.n_beats = 0
        self.n_beats_dropped = 0
        self._blocks_dropped = 0
        self._pending_flags = 0
        self._last_unix_s = 0
        self._ep_end = -1

    def _load_index(self):
        """Read index.json, check its shape, reconcile it with the night files present. A
        missing, unreadable or wrongly shaped index is rebuilt from the files (a repair, noted
        in self.repairs); the files are the truth, the index only remembers acks."""
        idx, why = _read_index(self.root + "/index.json")
        present = self._night_files()
        if why is not None:
            if present or why != "missing":  # no index and no nights: a new device
                self._repair("index.json %s: rebuilt from %d night files" % (why, len(present)))
            idx = {"v": 1, "next_id": 1, "open": None, "nights": []}
        self._idx = idx
        # Reconcile with the files present: a cut can fall between a file change and the index.
        known = {}
        for row in idx["nights"]:
            known[row[0]] = row
        changed = why is not None
        rows = []
        newest_unclosed = None
        for nid in sorted(present):
            row = known.get(nid)
            if row is None:
                closed = self._has_end(nid) if why is not None else 0
                row = [nid, self._read_start(nid), 0, closed]
                changed = True
                if why is None and idx["open"] is None and nid >= idx["next_id"] - 1:
                    idx["open"] = nid
                if not closed:
                    newest_unclosed = row
            rows.append(row)
            if nid >= idx["next_id"]:
                idx["next_id"] = nid + 1
                changed = True
        if why is not None:
            # Rebuilt: the newest night without a NIGHT_END is the one to resume; an older one
            # will never be written again, so it is offered to the host as it is.
            for row in rows:
                if not row[3] and row is not newest_unclosed:
                    row[3] = 1
            idx["open"] = newest_unclosed[0] if newest_unclosed is not None else None
        if len(rows) != len(idx["nights"]):
            changed = True
        idx["nights"] = rows
        if idx["open"] is not None and idx["open"] not in present:
            idx["open"] = None
            changed = True
        if changed:
            self._write_index()

    def _repair(self, what):
        self.repairs.append(what)
        compat.log("[storage] " + what)

    def _folder(self, path):
        """Make sure `path` is a folder; something else standing there is kept aside (.bad)."""
        _mkdir(path)
        try:
            os.listdir(path)
            return True
        except OSError:
            pass
        try:
            os.rename(path, path + ".bad")
            _mkdir(path)
            os.listdir(path)
            self._repair("%s was not a folder: kept as %s.bad" % (path, path))
            return True
        except OSError:
            self._repair("%s unusable: recording may fail" % path)
            return False

    def _night_files(self):
        folder = self.root + "/nights"
        if not self._folder(folder):
            return []
        present = []
        for name in os.listdir(folder):
            if name.endswith(".ns") and len(name) == 11 and name[:8].isdigit():
                present.append(int(name[:8]))
            elif name.endswith(".tmp"):  # a night never renamed into place (cut at creation
                try:  # or truncation): nothing refers to it, it only takes flash
                    os.remove(folder + "/" + name)
                    compat.log("[storage] removed the unfinished %s" % name)
                except OSError:
                    pass
        return present

    def _has_end(self, nid):
        """1 if the file ends with an intact NIGHT_END record (read from its tail only)."""
        buf = bytearray(_END_TAIL)
        try:
            with open(self._path(nid), "rb") as f:
                size = f.seek(0, 2)
                start = max(0, size - _END_TAIL)
                f.seek(start)
                n = f.readinto(buf)
        except OSError:
            return 0
        n = n or 0
        for i in range(n - 7, -1, -1):
            if buf[i] == vocab.REC_NIGHT_END and nfcodec.check_frame(buf, i, n) == n - i - 7:
                return 1
        return 0

    def _write_index(self):
        if self._index_busy:  # a stepped write is under way (sync acked between its steps)
            self._index_again = True
            return
        compat.run_steps(self._write_index_steps())

    def _write_index_steps(self):
        self._index_busy = True
        try:
            yield from _atomic_steps(self.root + "/index.json", json.dumps(self._idx))
        except OSError:  # flash full: the files stay authoritative (reconciled at boot)
            self.write_errors += 1
        finally:
            self._index_busy = False
        if self._index_again:  # changed meanwhile: write it once more, now
            self._index_again = False
            self._write_index()

    def _row(self, night_id):
        for row in self._idx["nights"]:
            if row[0] == night_id:
                return row
        return None

    def _read_start(self, night_id):
        from nsdev.core import nfdecode  # boot-time repairs only: the app drops it (~0.4 KiB)

        buf = bytearray(300)
        try:
            with open(self._path(night_id), "rb") as f:
                n = f.readinto(buf)
        except OSError:
            return 0
        for off, rtype, ln in nfcodec.iter_frames(buf, 4, n):
            if rtype == vocab.REC_HEADER:
                try:
                    return nfdecode.decode_payload(rtype, buf, off + 3, off + 3 + ln)[
                        "start_unix_s"]
                except (ValueError, IndexError, KeyError, TypeError):
                    return 0  # CRC-valid but malformed: the start stays unknown
            break
        return 0

    # ---- night lifecycle ----------------------------------------------------------------

    def start_night(self, unix_s, utc_offset_s=0, meta=None):
        """Open a new night starting at unix_s (UTC seconds); ends an open night first.
        meta: optional dict overriding device_id / fw_version / sensor_config.
        -> night id, or None if the flash cannot take a new file (write_errors counts it)."""
        return compat.run_steps(self.start_night_steps(unix_s, utc_offset_s, meta))

    def start_night_steps(self, unix_s, utc_offset_s=0, meta=None):
        """start_night() as a generator: it yields 1 before each file operation that may erase
        a flash sector (at most one each: a new block, or a metadata compaction), so the app can
        read the PPG FIFO in between (docs/simulation.md, "Honest time"). No record is taken
        before the night's file is in place. Its return value is start_night()'s."""
        if self.night_id is not None:
            yield from self.end_night_steps(unix_s, vocab.END_NEW_NIGHT)
        self._check_space()
        meta = meta or {}
        nid = self._idx["next_id"]
        self._idx["next_id"] = nid + 1
        self._close_file()
        self._n = 0
        self._reset_counts()
        self.start_unix_s = unix_s
        p = nfencode.write_magic(self._buf, 0)
        p = nfencode.encode_header(
            self._buf, p, meta.get("device_id", self.device_id), nid, unix_s, utc_offset_s,
            meta.get("fw_version", self.fw_version), self.epoch_s,
            meta.get("sensor_config", self.sensor_config))
        if p < 0:
            raise ValueError("header does not fit the record buffer")
        # The file appears under its final name only with its header in it (write, rename).
        path = self._path(nid)
        yield 1
        try:
            yield from _atomic_steps(path, memoryview(self._buf)[:p])
        except OSError:  # flash full of unsynced nights: nothing can be recorded
            self.write_errors += 1
            self.lost_records += 1
            try:
                os.remove(path + ".tmp")
            except OSError:
                pass
            return None
        self.night_id = nid
        self._last_unix_s = unix_s
        if self.beats_dropping:
            self._emit_beats_dropped(unix_s)
            self.flush()
        self._idx["nights"].append([nid, unix_s, 0, 0])
        self._idx["open"] = nid
        yield 1
        yield from self._write_index_steps()
        return nid

    def end_night(self, unix_s, reason=vocab.END_SCHEDULE):
        """Close the open night with a NIGHT_END record. -> the closed night id or None."""
        return compat.run_steps(self.end_night_steps(unix_s, reason))

    def end_night_steps(self, unix_s, reason=vocab.END_SCHEDULE):
        """end_night() as a generator (see start_night_steps). Nothing is added to the night
        after its NIGHT_END record. Its return value is end_night()'s."""
        nid = self.night_id
        if nid is None:
            return None
        self._emit_beats_dropped(unix_s)
        self._put(nfencode.encode_night_end(
            self._buf, self._n, unix_s - self.start_unix_s, self.n_epochs, self.n_events,
            self.n_beats, self.n_beats_dropped, reason))
        self._closing = True
        try:
            yield 1
            while self.flush_write():
                yield 1
            self.flush_commit()
        finally:
            self._closing = False
        self._close_file()
        row = self._row(nid)
        if row is not None:
            row[3] = 1
        self._idx["open"] = None
        self.night_id = None
        yield 1
        yield from self._write_index_steps()
        return nid

    def _scan_open(self):
        """(id, scan) of the night left open when the board stopped; scan None: nothing to do."""
        nid = self._idx["open"]
        if nid is None or self.night_id is not None:
            return nid, None
        self._reset_counts()
        return nid, self._scan(nid)

    def recover(self, unix_s, reset_cause=vocab.RESET_UNKNOWN):
        """After boot: reopen the night that was open when the board stopped, cut a torn tail,
        and log a RESET event (cause, gap_s). -> the resumed night id, or None."""
        try:
            return self._recover(unix_s, reset_cause)
        finally:
            self._scratch = None  # 2 KiB needed only at boot: not kept for the night

    def _recover(self, unix_s, reset_cause):
        nid, info = self._scan_open()
        if info is None:
            return None
        start, valid_end, size, last_s, closed = info
        if start is None:  # no header record: not a night this firmware can continue
            self._repair("night %d has no header: closed as it is" % nid)
            closed = True
        if closed:
            row = self._row(nid)
            if row is not None:
                row[3] = 1
            self._idx["open"] = None
            self._write_index()
            return None
        if valid_end < size:
            self._truncate(nid, valid_end)
        self.night_id = nid
        self.start_unix_s = start
        self._n = 0
        gap_s = unix_s - (start + last_s) if last_s is not None else -1
        self._pending_flags = vocab.FLAG_RESUMED
        self._last_unix_s = unix_s
        self.add_event(unix_s, vocab.EV_RESET, (reset_cause, gap_s))
        self.flush()
        return nid

    # ---- the wall clock unknown (docs/night-format.md, "Wall clock unknown") ----------------

    def open_night_id(self):
        """The night left open when the board stopped (before recover()), or None."""
        return self._idx["open"]

    def close_unresumable(self, reason=vocab.END_CLOCK_LOST):
        """The open night cannot go on (its clock was lost): close it at its last record's time
        (a torn tail cut first). -> its id, or None."""
        try:
            return self._close_unresumable(reason)
        finally:
            self._scratch = None

    def _close_unresumable(self, reason):
        nid, info = self._scan_open()
        if info is None:
            return None
        start, valid_end, size, last_s, closed = info
        if valid_end < size:
            self._truncate(nid, valid_end)
        self.night_id = nid
        self.start_unix_s = start
        self._n = 0
        if closed:
            self._close_file()
            row = self._row(nid)
            if row is not None:
                row[3] = 1
            self._idx["open"] = None
            self._write_index()
            self.night_id = None
            return nid
        return self.end_night(start + (last_s or 0), reason)

    def boot_clock_nights(self):
        """Ids of the nights recorded on this power-on's boot clock (wall clock unknown)."""
        try:
            with open(self.root + "/" + _BOOT_CLOCK_FILE) as f:
                ids = json.load(f)
        except (OSError, ValueError):
            return []
        if not isinstance(ids, list):
            return []
        return [i for i in ids if isinstance(i, int)]

    def set_boot_clock_nights(self, ids):
        try:
            if ids:
                write_atomic(self.root + "/" + _BOOT_CLOCK_FILE, json.dumps(ids))
            else:
                os.remove(self.root + "/" + _BOOT_CLOCK_FILE)
        except OSError:
            pass

    def reanchor(self, delta_s):
        """The wall clock is now known, delta_s = wall clock - boot clock: move every night of
        this power-on's boot clock onto the wall clock. Times inside a night are offsets from
        its header's start, so only the header changes (the file is rewritten, write-then-
        rename). -> ids re-anchored."""
        done = []
        for nid in self.boot_clock_nights():
            row = self._row(nid)
            if row is None:
                continue
            if nid == self.night_id:
                self.flush()
                self._close_file()
            if self._rewrite_start(nid, delta_s):
                row[1] += delta_s
                done.append(nid)
                if nid == self.night_id:
                    self.start_unix_s += delta_s
                    self._last_unix_s += delta_s
        self.set_boot_clock_nights([])
        self._scratch = None
        if done:
            self._write_index()
        return done

    def _rewrite_start(self, nid, delta_s):
        from nsdev.core import nfdecode  # when the clock is first set: the app drops it after

        if self._scratch is None:
            self._scratch = bytearray(_SCRATCH)
        buf = self._scratch
        mv = memoryview(buf)
        path = self._path(nid)
        tmp = path + ".tmp"
        try:
            with open(path, "rb") as src:
                got = src.readinto(mv[:4 + 3])
                if got != 7 or bytes(buf[:4]) != vocab.MAGIC or buf[4] != vocab.REC_HEADER:
                    return False
                ln = buf[5] | (buf[6] << 8)
                if ln > vocab.MAX_PAYLOAD:
                    return False
                src.readinto(mv[7:11 + ln])
                if nfcodec.check_frame(buf, 4, 11 + ln) != ln:
                    return False
                h = nfdecode.decode_payload(vocab.REC_HEADER, buf, 7, 7 + ln)
                if h["start_unix_s"] >= _MIN_WALL_UNIX_S:
                    return False  # already on the wall clock
                p = nfencode.write_magic(buf, 0)
                p = nfencode.encode_header(
                    buf, p, h["device_id"], h["night_id"], h["start_unix_s"] + delta_s,
                    h["utc_offset_s"], h["fw_version"], h["epoch_s"], h["sensor_config"])
                if p < 0:
                    return False
                with open(tmp, "wb") as dst:
                    dst.write(mv[:p])
                    while True:
                        got = src.readinto(mv)
                        if not got:
                            break
                        dst.write(mv[:got])
            os.rename(tmp, path)
        except (OSError, ValueError, KeyError):
            self.write_errors += 1
            return False
        return True

    def _scan(self, nid):
        """Walk the file record by record (bounded RAM). -> (start_unix_s, end of the last
        intact record, file size, last record time in s since start, has NIGHT_END)."""
        from nsdev.core import nfdecode  # recovery at boot: the app drops it after

        if self._scratch is None:
            self._scratch = bytearray(_SCRATCH)
        buf = self._scratch
        mv = memoryview(buf)
        start = None
        last_s = None
        closed = False
        try:
            f = open(self._path(nid), "rb")
        except OSError:
            return None
        try:
            size = f.seek(0, 2)
            f.seek(0)
            pos = 4 if f.readinto(mv[:4]) == 4 and bytes(buf[:4]) == vocab.MAGIC else 0
            valid_end = pos
            while pos < size:
                f.seek(pos)
                got = f.readinto(mv[:3])
                if got != 3:
                    break
                ln = buf[1] | (buf[2] << 8)
                if ln > vocab.MAX_PAYLOAD:
                    break
                got += f.readinto(mv[3:7 + ln])
                if nfcodec.check_frame(buf, 0, got) != ln:
                    break
                rtype = buf[0]
                try:
                    if rtype == vocab.REC_HEADER and start is None:
                        start = nfdecode.decode_payload(rtype, buf, 3, 3 + ln)["start_unix_s"]
                    t, nb = nfdecode.record_time_beats(rtype, buf, 3, 3 + ln)
                    if t is not None:
                        last_s = t if last_s is None or t > last_s else last_s
                    self.n_beats += nb
                    if rtype == vocab.REC_EPOCH:
                        self.n_epochs += 1
                    elif rtype == vocab.REC_EVENT:
                        self.n_events += 1
                    elif rtype == vocab.REC_NIGHT_END:
                        closed = True
                except (ValueError, IndexError, KeyError, TypeError):
                    pass  # CRC-valid but malformed payload: keep it, the decoder reports it
                pos += 7 + ln
                valid_end = pos
        finally:
            f.close()
        # Damage followed by intact records is not a torn tail: keep it (the decoder skips it).
        if valid_end < size and size - valid_end > _SCRATCH:
            valid_end = size
        return start, valid_end, size, last_s, closed

    def _truncate(self, nid, length):
        # No truncate() in MicroPython: copy the intact prefix and rename it over the file.
        path = self._path(nid)
        tmp = path + ".tmp"
        mv = memoryview(self._scratch)
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            left = length
            while left > 0:
                got = src.readinto(mv[:min(left, len(mv))])
                if not got:
                    break
                dst.write(mv[:got])
                left -= got
        os.rename(tmp, path)

    # ---- adding records (RAM only: safe from the processing path) -----------------------

    def _put(self, end):
        self._ep_end = -1
        if end < 0:
            self.lost_records += 1
            return False
        self._n = end
        return True

    def add_epoch(self, unix_s, hr_bpm=None, rmssd_ms=None, sdnn_ms=None, pwa_mean=None,
                  spo2_pct=None, sqi=None, arousal_score=None, temp_c=None, rh_pct=None,
                  pressure_hpa=None, gas_ohm=None, lux=None, mel_edi_lx=None, lamp_level=None,
                  flags=0, resp_per_min=None, clip_temp_c=None):
        """One epoch summary; unix_s = epoch start (UTC s). None = unknown. -> stored?"""
        if self.night_id is None or self._closing:
            return False
        flags |= self._pending_flags
        if self.beats_dropping:
            flags |= vocab.FLAG_BEATS_DROPPED
        t_off_s = unix_s - self.start_unix_s
        ok = self._put(nfencode.encode_epoch(
            self._buf, self._n, t_off_s,
            (hr_bpm, rmssd_ms, sdnn_ms, pwa_mean, spo2_pct, sqi, arousal_score, temp_c, rh_pct,
             pressure_hpa, gas_ohm, lux, mel_edi_lx, lamp_level), flags, self._mark,
            (resp_per_min, clip_temp_c)))
        if ok:
            self._ep_end = self._n
            self._ep_t_off_s = t_off_s
            self.n_epochs += 1
            self._pending_flags = 0
            self._last_unix_s = unix_s
        return ok

    def add_event(self, unix_s, kind, values=(), text=None, ms=0):
        """An event at unix_s + ms/1000; kind = vocab.EV_*, values = ints. -> stored?"""
        if self.night_id is None or self._closing:
            return False
        ok = self._put(nfencode.encode_event(
            self._buf, self._n, (unix_s - self.start_unix_s) * 1000 + ms, kind, values, text))
        if ok:
            self.n_events += 1
        return ok

    def add_beats(self, unix_s, ms, ibi_ms, pwa, n):
        """n beats, beat 0 at unix_s + ms/1000; ibi_ms[i] = ms from beat i to beat i+1
        (n-1 values, 1..65535); pwa[i] = amplitude of beat i in ADC counts (0 = unknown) or
        None. Right after add_epoch (the app's order) the beats go into that EPOCH record,
        otherwise into a BEATS record of their own. Dropped (and counted) while the flash is full
        of unsynced nights. -> stored?"""
        if self.night_id is None or n <= 0 or self._closing:
            return False
        if self.beats_dropping:
            self.n_beats_dropped += n
            self._blocks_dropped += 1
            return False
        t0_off_ms = (unix_s - self.start_unix_s) * 1000 + ms
        end = -1
        try:
            if self._ep_end == self._n and self._n > 0:
                end = nfencode.append_beats(self._buf, self._mark, self._ep_t_off_s, t0_off_ms,
                                             ibi_ms, pwa, n, self.ibi_res_ms, self.pwa_shift)
            if end < 0:
                end = nfencode.encode_beats(self._buf, self._n, t0_off_ms, ibi_ms, pwa, n,
                                             self.ibi_res_ms, self.pwa_shift)
        except ValueError:
            end = -1
        if self._put(end):
            self.n_beats += n
            return True
        self.n_beats_dropped += n
        return False

    def add_env(self, unix_s, temp_c=None, rh_pct=None, pressure_hpa=None, gas_ohm=None,
                lux=None, mel_edi_lx=None, ms=0):
        """One environment sample at unix_s + ms/1000. None = unknown. -> stored?"""
        if self.night_id is None or self._closing:
            return False
        return self._put(nfencode.encode_env(
            self._buf, self._n, (unix_s - self.start_unix_s) * 1000 + ms,
            (temp_c, rh_pct, pressure_hpa, gas_ohm, lux, mel_edi_lx)))

    def pending_bytes(self):
        return self._n

    # ---- flash writes (storage task only) -----------------------------------------------

    def _close_file(self):
        if self._written:
            self.flush_commit()
        f = self._file
        self._file = None
        if f is not None:
            try:
                f.close()
            except OSError:
                self.write_errors += 1

    def flush(self):
        """Append the buffered records to the night file and commit them. Call from the storage
        task, at least once per epoch, never from the sampling path. -> bytes written."""
        n = 0
        while True:
            k = self.flush_write()
            if not k:
                break
            n += k
        if n and not self.flush_commit():
            return 0
        return n

    def flush_write(self):
        """One piece of the first half of flush(): hand buffered records to the file system,
        at most up to the end of the file's current flash block, so that one call erases at
        most one sector (littlefs copy-on-write: the first append after a commit allocates and
        erases a new block, and crossing a block's end erases the next). Call it until it
        returns 0, then flush_commit(). Records added meanwhile are written too. Nothing is
        durable before the commit (littlefs shows a power cut the last committed file).
        -> bytes handed over by this call (0: nothing left, or it failed)."""
        done = self._written
        n = self._n - done
        if n <= 0 or self.night_id is None:
            return 0
        try:
            if self._file is None:
                path = self._path(self.night_id)
                self._file = open(path, "ab")
                self._size = os.stat(path)[6]
                self._blk_end = 0
                self._blk_n = 0
            k = self._block_room()
            if k > n:
                k = n
            self._file.write(memoryview(self._buf)[done:done + k])
        except OSError as e:
            self._write_failed(e, n)
            return 0
        self._ep_end = -1  # the records handed over must not change (add_beats)
        self._written = done + k
        self._size += k
        return k

    def _block_room(self):
        """Bytes the open file can grow before littlefs needs its next flash block. CTZ
        skip-list layout (littlefs SPEC.md, "CTZ skip-lists"): block 0 holds block_size bytes
        of data, block n >= 1 starts with ctz(n) + 1 pointers of 4 bytes. A small file lives
        inline in its directory until it outgrows it, then it moves to block 0 (one erase)."""
        if not self._bsize:
            try:
                self._bsize = os.statvfs(self.root)[0] or 4096
            except (OSError, AttributeError):
                self._bsize = 4096
        bs = self._bsize
        end = self._blk_end
        n = self._blk_n
        if n == 0:
            end = bs
            n = 1
        while end <= self._size:
            ptrs = 1
            m = n
            while not m & 1:
                m >>= 1
                ptrs += 1
            end += bs - 4 * ptrs
            n += 1
        self._blk_end = end
        self._blk_n = n
        return end - self._size

    def flush_commit(self):
        """Second half of flush(): commit what flush_write() handed over (littlefs: the
        metadata commit, sometimes a compaction erase). -> True if committed."""
        n = self._written
        if n == 0:
            return True
        self._written = 0
        try:
            self._file.flush()  # littlefs: commits the file (lfs_file_sync)
        except (OSError, AttributeError) as e:
            self._write_failed(e, n)
            return False
        left = self._n - n  # records added between the two halves move to the front
        buf = self._buf
        for i in range(left):
            buf[i] = buf[n + i]
        self._n = left
        self._ep_end = -1
        self._flushes += 1
        if self._flushes % self.check_every == 0:
            self._check_space()
        return True

    def _write_failed(self, e, n):
        self.write_errors += 1
        self._close_file()
        if e.args and e.args[0] == _ENOSPC:
            self._check_space()
            if self._n + 64 > len(self._buf):  # keep recording: give up this batch
                self.lost_records += 1
                self.lost_bytes += n
                self._n = 0
                self._ep_end = -1

    # ---- retention ----------------------------------------------------------------------

    def free_bytes(self):
        try:
            return self._free_fn(self.root)
        except OSError:
            return -1

    def _check_space(self):
        free = self.free_bytes()
        if free < 0:
            return
        while free < self.low_free_bytes:
            victim = None
            for row in self._idx["nights"]:  # oldest first (ids increase)
                if row[2] and row[3] and row[0] != self.night_id:
                    victim = row
                    break
            if victim is None:
                break
            try:
                os.remove(self._path(victim[0]))
            except OSError:
                pass  # already gone
            self._idx["nights"].remove(victim)
            self._write_index()
            self.deleted.append(victim[0])
            free = self.free_bytes()
        dropping = 0 <= free < self.beats_min_free_bytes
        if dropping != self.beats_dropping and self.night_id is not None:
            if dropping:
                self.beats_dropping = True
                self._emit_beats_dropped(None)
            else:
                self._emit_beats_dropped(None)
                self.beats_dropping = False
        elif self.night_id is None:
            self.beats_dropping = dropping

    def _emit_beats_dropped(self, unix_s):
        if not self.beats_dropping and not self.n_beats_dropped:
            return
        if unix_s is None:
            unix_s = self._last_unix_s
        self.add_event(unix_s, vocab.EV_BEATS_DROPPED,
                       (self.n_beats_dropped, self._blocks_dropped),
                       "flash full of unsynced nights" if self.beats_dropping else "")

    # ---- index and read access (sync) ---------------------------------------------------

    def list_nights(self):
        """-> list of dicts: night_id, start_unix_s, size (bytes), acked, closed, open."""
        out = []
        for row in self._idx["nights"]:
            out.append({"night_id": row[0], "start_unix_s": row[1],
                        "size": self.night_size(row[0]), "acked": bool(row[2]),
                        "closed": bool(row[3]), "open": row[0] == self.night_id})
        return out

    def night_ids(self):
        """-> ids of the nights on flash, oldest first (cheap: no file access)."""
        return [row[0] for row in self._idx["nights"]]

    def ack_night(self, night_id):
        """The host has a verified copy: the night may be deleted when space runs low.
        Refused (False) for the open night or an unknown id."""
        row = self._row(night_id)
        if row is None or night_id == self.night_id or not row[3]:
            return False
        if not row[2]:
            row[2] = 1
            self._write_index()
        return True

    def night_size(self, night_id):
        """Committed bytes of the night file, -1 if it does not exist."""
        try:
            return os.stat(self._path(night_id))[6]
        except OSError:
            return -1

    def read_night(self, night_id, offset, length, buf):
        """Read up to `length` bytes at `offset` into `buf` (bytearray/memoryview).
        -> bytes read (0 at the end); OSError if the night does not exist."""
        mv = memoryview(buf)
        with open(self._path(night_id), "rb") as f:
            f.seek(offset)
            got = f.readinto(mv[:min(length, len(mv))])
        return got or 0
