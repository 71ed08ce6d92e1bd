# Tests-only device object for nsdev.sync: nights are files NIGHTS/<id>.night (a name ending in
# .open marks a night still recording); acks, secret, time, config and Wi-Fi go to STATE/.
# Runs under MicroPython (the device side in tests) and CPython.
# ruff: noqa: UP031
import json
import os


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class FakeDevice:
    device_id = "ns-test-0001"
    firmware_version = "0.1.0-test"

    def __init__(self, nights_dir, state_dir):
        self.nights_dir = nights_dir
        self.state_dir = state_dir
        self.config = {"bedtime": "23:00", "wake": "07:00", "evening_mel_edi_max_lx": 10,
                       "label": ""}
        self.acked = set()
        if _exists(state_dir + "/acks.log"):
            with open(state_dir + "/acks.log") as f:
                for line in f:
                    if line.strip():
                        self.acked.add(int(line))

    def _path(self, night_id):
        p = "%s/%d.night" % (self.nights_dir, night_id)
        return p if _exists(p) else p + ".open"

    def list_nights(self):
        out = []
        for name in sorted(os.listdir(self.nights_dir)):
            if ".night" not in name:
                continue
            nid = int(name.split(".")[0])
            out.append({"night_id": nid, "size": self.night_size(nid),
                        "start_unix_s": 1767225600 + 86400 * nid, "acked": nid in self.acked,
                        "open": name.endswith(".open"), "closed": not name.endswith(".open")})
        return out

    def night_size(self, night_id):
        try:
            return os.stat(self._path(night_id))[6]
        except OSError:
            return -1

    def read_night(self, night_id, offset, length, buf):
        with open(self._path(night_id), "rb") as f:
            f.seek(offset)
            return f.readinto(memoryview(buf)[:length]) or 0

    def ack_night(self, night_id):
        if self.night_size(night_id) < 0 or self._path(night_id).endswith(".open"):
            return False
        self.acked.add(night_id)
        with open(self.state_dir + "/acks.log", "a") as f:
            f.write("%d\n" % night_id)
        return True

    def status(self):
        import gc

        gc.collect()
        heap = gc.mem_free() if hasattr(gc, "mem_free") else -1  # real: flood tests watch it
        return {"uptime_s": 1234, "flash_free_bytes": 1500000, "heap_free_bytes": heap,
                "faults": 0, "unix_time_s": 1767225600, "utc_offset_s": 3600,
                "clock_valid": True, "recording": False}

    def get_config(self):
        return dict(self.config)

    def set_config(self, changes):
        for k, v in changes.items():
            if k not in self.config:
                return "unknown key %s" % k
            if k == "label":
                if not isinstance(v, str):
                    return "label must be text"
            elif k in ("bedtime", "wake"):
                if not isinstance(v, str) or len(v) != 5 or v[2] != ":":
                    return "%s must be HH:MM" % k
            elif not isinstance(v, (int, float)) or not 0 <= v <= 50:
                return "%s must be a number 0-50" % k
        self.config.update(changes)
        return None

    def set_time(self, unix_s, utc_offset_s):
        with open(self.state_dir + "/time.json", "w") as f:
            f.write(json.dumps([unix_s, utc_offset_s]))

    def get_secret(self):
        try:
            with open(self.state_dir + "/secret.bin", "rb") as f:
                return f.read()
        except OSError:
            return None

    def set_secret(self, secret):
        with open(self.state_dir + "/secret.bin", "wb") as f:
            f.write(secret)

    def set_wifi(self, ssid, password):
        with open(self.state_dir + "/wifi.json", "w") as f:
            f.write(json.dumps([ssid, password]))
        return None
