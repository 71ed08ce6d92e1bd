# The small state files the device reads at boot (besides config.json, see nsdev.config, and the
# night index, see nsdev.recorder): each is checked against its shape; a wrong one gives a safe
# default, is logged and noted in `repairs` (the app records each as an event), and the device
# keeps recording. No file here can stop the device booting.
import json

from nsdev import compat
from nsdev.core.arousal import Hyperarousal

BASELINE_FILE = "baseline.json"  # the person's own evening-HR baseline, kept across nights
WIFI_FILE = "wifi.json"  # {"ssid": str 1-32 bytes, "password": str 0-64 bytes}
RESET_NOTE = "reset_why.txt"  # why the firmware last reset the board (board.reset writes it)
SECRET_FILE = "secret.bin"  # the pairing secret, proto.SECRET_LEN bytes (read when a TCP
# session authenticates)
_NOTE_MAX = 200

repairs = []  # "file: what was wrong: what was done", in boot order


def repair(text):
    repairs.append(text)
    compat.log("[boot] " + text)


def read_json(path):
    """-> (value, None), or (None, "missing"), or (None, why it is unreadable)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None, "missing"
    try:
        return json.loads(data), None
    except Exception:  # ValueError, UnicodeError, or whatever the bytes make of the parser
        return None, "not JSON"


def save_json(path, obj):
    """Write a state file atomically (write-then-rename)."""
    compat.write_atomic(path, json.dumps(obj).encode())


def load_baseline(path=BASELINE_FILE):
    """The stored baseline, or a fresh one (a wrong file is replaced at the end of the night)."""
    d, why = read_json(path)
    if why is None:
        try:
            return Hyperarousal.from_dict(d)
        except ValueError as e:
            why = str(e)
    if why != "missing":
        repair("%s %s: baseline starts afresh" % (path, why))
    return Hyperarousal()


def load_wifi(path=WIFI_FILE):
    """-> (ssid, password), or None (no file, or a wrong one: Wi-Fi stays off until set again
    over USB)."""
    d, why = read_json(path)
    if why is None:
        why = _wifi_error(d)
        if why is None:
            return d["ssid"], d.get("password", "")
    if why != "missing":
        repair("%s %s: Wi-Fi off, set it again over USB" % (path, why))
    return None


def _wifi_error(d):
    if not isinstance(d, dict):
        return "not an object"
    ssid = d.get("ssid")
    pw = d.get("password", "")
    if not isinstance(ssid, str) or not 1 <= len(ssid.encode()) <= 32:
        return "ssid: expected text of 1-32 bytes"
    if not isinstance(pw, str) or len(pw.encode()) > 64:
        return "password: expected text of at most 64 bytes"
    return None


def take_reset_note(path=RESET_NOTE):
    """Why the firmware reset the board last time, as printable ASCII (None if no note); the
    note is removed once read so it is reported once."""
    import os

    try:
        with open(path, "rb") as f:
            data = f.read(_NOTE_MAX)
    except OSError:
        return None
    try:
        os.remove(path)
    except OSError:
        pass
    text = "".join(chr(b) if 32 <= b < 127 else "?" for b in data)
    return text or None


def check_secret(path=SECRET_FILE):
    """A pairing secret of the wrong size is never used (TCP sessions then get "not paired");
    say so once at boot. Imports the sync protocol's module for its length: the app drops it
    again after boot (it is loaded when a host syncs, docs/twin-and-image.md)."""
    import os

    from nsdev.core import proto

    try:
        size = os.stat(path)[6]
    except OSError:
        return
    if size != proto.SECRET_LEN:
        repair("%s is %d bytes, not %d: pair again over USB" % (path, size, proto.SECRET_LEN))
