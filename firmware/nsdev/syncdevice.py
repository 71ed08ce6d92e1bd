# What the sync protocol sees of the device (the contract is in nsdev.sync): status, nights,
# settings, clock, pairing secret and Wi-Fi credentials, all through the app's public methods.
from nsdev import VERSION, bootfiles, compat, config
from nsdev.core import proto, vocab


class SyncDevice:
    def __init__(self, app):
        self.app = app
        self.device_id = app.board.device_id()
        self.firmware_version = VERSION

    def status(self):
        app = self.app
        faults = {}
        for s in app.subsystems:
            faults[s.name] = s.status()
        return {
            "uptime_s": app.uptime_s(),
            "flash_free_bytes": app.rec.free_bytes(),
            "heap_free_bytes": compat.heap_free(),
            "faults": faults,
            "unix_time_s": compat.unix_time(),
            "utc_offset_s": app.cfg["utc_offset_s"],
            "clock_valid": app.clock_valid(),
            "recording": app.rec.night_id is not None,
            "log": list(compat.log_ring),
            "perf": dict(app.perf),
        }

    def list_nights(self):
        return self.app.rec.list_nights()

    def night_size(self, night_id):
        return self.app.rec.night_size(night_id)

    def read_night(self, night_id, offset, length, buf):
        return self.app.rec.read_night(night_id, offset, length, buf)

    def ack_night(self, night_id):
        return self.app.rec.ack_night(night_id)

    def get_config(self):
        return dict(self.app.cfg)

    def set_config(self, changes):
        if not isinstance(changes, dict):
            return "expected an object of settings"
        new, errors = config.merge(self.app.cfg, changes)
        if errors:
            return "; ".join(errors)[:200]
        config.save(new)
        self.app.apply_config(new)
        return None

    def set_time(self, unix_s, utc_offset_s):
        app = self.app
        delta = app.set_clock(unix_s)  # re-anchors boot-clock nights if the clock was unset
        if utc_offset_s != app.cfg["utc_offset_s"]:
            new, errors = config.merge(app.cfg, {"utc_offset_s": utc_offset_s})
            if not errors:
                config.save(new)
                app.apply_config(new)
        app.event(vocab.EV_CLOCK_SET, (delta,))

    def get_secret(self):
        try:
            with open(bootfiles.SECRET_FILE, "rb") as f:
                secret = f.read()
        except OSError:
            return None
        return secret if len(secret) == proto.SECRET_LEN else None

    def set_secret(self, secret):
        compat.write_atomic(bootfiles.SECRET_FILE, bytes(secret))

    def set_wifi(self, ssid, password):
        if not ssid or len(ssid) > 32 or len(password) > 64:
            return "ssid must be 1-32 bytes and the password at most 64"
        bootfiles.save_json(bootfiles.WIFI_FILE, {"ssid": ssid, "password": password})
        return None
