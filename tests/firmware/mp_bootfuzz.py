# Device-state fuzzing on the virtual board (MicroPython): before each boot, random JSON shapes or
# random bytes go into the files the firmware reads at boot; the app must boot, record and say
# what it repaired. Usage (MICROPYPATH = tests : vboard : firmware, cwd = an empty folder):
#   micropython mp_bootfuzz.py BOOTS SEED RUN_S TCP_PORT
# (the valid config turns Wi-Fi on, so wifi.json is read; the sync server then listens on
# 127.0.0.1:TCP_PORT, loopback only: the unix port's board has no radio)
# Prints one JSON line per boot and a last line {"boots": n, "failures": [...]}.
# ruff: noqa: UP031
import json
import os
import sys
import time

import vasyncio
import world
from mp_util import Rng

T0 = 1767225600  # 2026-01-01 00:00 UTC: inside the default schedule, so the app records at boot

NEAR_KEYS = ("v", "next_id", "open", "nights", "nights", "base_hr", "base_var", "base_decline",
             "ssid", "password", "bedtime", "wake", "winddown_min", "utc_offset_s", "x")
TEMPLATES = {
    "data/index.json": {"v": 1, "next_id": 2, "open": None, "nights": [[1, T0, 0, 1]]},
    "baseline.json": {"nights": 3, "base_hr": 58.5, "base_var": 9.0, "base_decline": 6.0},
    "wifi.json": {"ssid": "home", "password": "password1"},
    "config.json": {"bedtime": "23:00", "wake": "07:00", "wifi": True, "tcp_port": 0},
    "reset_why.txt": None,
    "secret.bin": None,
}
# From the review (issue 15): shapes that made the firmware boot-loop.
KNOWN_BAD = {
    "data/index.json": ['[1]', '{"v":1}', '{"v":1,"next_id":"2","open":null,"nights":[]}'],
    "baseline.json": ['{"nights":"x"}', '{"base_hr":null}', '[1]', '{"base_hr":NaN}'],
    "wifi.json": ['[1]', '{"ssid":5}', '{"ssid":"x","password":[1]}'],
    "config.json": ['[1]', '{"bedtime":7}'],
}

SCALARS = ("null", "true", "false", "0", "-1", "1", "2", "1e400", "-1e400", "NaN", "Infinity",
           "123456789012345678901234567890", "0.5", "-0.0", '""', '"x"', '"2"', '"\\u0000"',
           '"home"', "99999999", "100000000", "4294967296")


def rand_json(rng, depth=0):
    """JSON text (sometimes beyond the standard: NaN, Infinity, huge numbers)."""
    k = rng.next(10)
    if depth > 3 or k < 4:
        return rng.pick(SCALARS)
    if k < 7:
        return "[" + ",".join(rand_json(rng, depth + 1) for _ in range(rng.next(5))) + "]"
    parts = []
    for _ in range(rng.next(6)):
        parts.append('"%s":%s' % (rng.pick(NEAR_KEYS), rand_json(rng, depth + 1)))
    return "{" + ",".join(parts) + "}"


def mutate(rng, template):
    """A valid template with one key removed or given a random value."""
    d = dict(template)
    keys = [k for k in d if k not in ("wifi", "tcp_port")]  # never a server on another port
    key = rng.pick(keys)
    if rng.next(3) == 0:
        del d[key]
        return json.dumps(d)
    text = json.dumps(d)
    old = '"%s": %s' % (key, json.dumps(d[key]))
    if old not in text:
        return text
    return text.replace(old, '"%s": %s' % (key, rand_json(rng, 2)))


def content(rng, name):
    """-> (bytes, kind): kind 'bytes', 'known', 'shape' or 'mutated'."""
    k = rng.next(4)
    if k == 0 or TEMPLATES.get(name, 0) is None:
        return rng.bytes(rng.next(300)), "bytes"
    if k == 1 and name in KNOWN_BAD:
        return rng.pick(KNOWN_BAD[name]).encode(), "known"
    if k == 2:
        return rand_json(rng).encode(), "shape"
    return mutate(rng, TEMPLATES[name]).encode(), "mutated"


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _reset_loop():
    """As a reset does (see simboot._reboot): no task, timer or clock listener survives."""
    import asyncio
    import asyncio.core

    time._listeners[:] = []
    asyncio.core.cur_task = None
    asyncio.core._stop_task = None
    ctx = asyncio.core._exc_context
    ctx["exception"] = ctx["future"] = None
    asyncio.new_event_loop()


def boot(unix_s, run_s):
    """Boot the app for run_s virtual seconds. -> (app, error text or None)."""
    import asyncio

    from nsdev import bootfiles
    from nsdev.app import App
    from nsdev.board import Board

    time.setup(unix_s, run_s)
    _reset_loop()
    bootfiles.repairs[:] = []
    app = None
    try:
        app = App(Board())
        asyncio.run(app.run())
        return app, "app returned"
    except time.SimEnd:
        return app, None
    except world.SimReset as e:
        return app, "reset: %s" % e
    except Exception as e:  # the point of the test: nothing may escape at boot
        sys.print_exception(e)
        return app, "%s: %s" % (type(e).__name__, e)


def main():
    boots = int(sys.argv[1])
    rng = Rng(int(sys.argv[2]))
    run_s = int(sys.argv[3])
    TEMPLATES["config.json"]["tcp_port"] = int(sys.argv[4])
    world.config = {}
    world.buses[0] = world.VirtualI2CBus(0)  # no chips on the bus: every sensor is missing
    vasyncio.install()
    failures = []
    for i in range(boots):
        broken = {}
        for name in TEMPLATES:
            # boot 0 makes the state (a night, an index) that later boots damage
            if i and rng.next(2):
                data, kind = content(rng, name)
                broken[name] = kind
            elif name == "data/index.json":
                continue  # as the firmware left it
            elif TEMPLATES[name] is None:
                data = bytes(range(32)) if name == "secret.bin" else b""
            else:
                data = json.dumps(TEMPLATES[name]).encode()
            if data or name != "reset_why.txt":
                with open(name, "wb") as f:
                    f.write(data)
            elif _exists(name):
                os.remove(name)
        if i and rng.next(4) == 0:  # a night file of random bytes (new, or over a night)
            name = "data/nights/%08d.ns" % (1 + rng.next(40))
            with open(name, "wb") as f:
                f.write(rng.bytes(rng.next(400)))
            broken[name] = "bytes"
        app, err = boot(T0 + 120 * i, run_s)
        rec = app.rec if app is not None else None
        said = getattr(app, "boot_repairs", [])
        fail = []
        if err:
            fail.append(err)
        if rec is None or rec.night_id is None:
            fail.append("not recording")
        elif rec.n_epochs < 1 or rec._flushes < 1 or rec.write_errors:
            fail.append("no epoch on flash")
        expect = ["data/index.json", "baseline.json", "config.json"]
        if "config.json" not in broken:
            expect.append("wifi.json")  # read only when the settings turn Wi-Fi on
        for name in expect:
            kind = broken.get(name)
            if kind in ("known", "bytes") and not any(name.split("/")[-1] in s for s in said):
                fail.append("%s broken (%s) but no repair said" % (name, kind))
        for s in said:  # nothing repaired that was not damaged
            if not s.startswith("night ") and not any(
                    n.split("/")[-1].split(".")[0] in s for n in broken):
                fail.append("repair without damage: %s" % s)
        print(json.dumps({"boot": i, "broken": broken, "repairs": said, "fail": fail}))
        if fail:
            failures.append([i, fail])
    print(json.dumps({"boots": boots, "failures": failures}))


main()
