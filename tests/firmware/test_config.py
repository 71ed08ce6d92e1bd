# Device configuration schema: defaults, validation messages, persistence (both interpreters).
from nsdev import config

RUN_UNDER_MICROPYTHON = True


def test_defaults_pass_their_own_validation():
    d = config.defaults()
    new, errors = config.merge(d, d)
    assert errors == [] and new == d


def test_hhmm():
    assert config.hhmm_to_min("00:00") == 0
    assert config.hhmm_to_min("23:59") == 23 * 60 + 59
    for bad in ("24:00", "7:30", "07:60", "ab:cd", 730, None):
        try:
            config.hhmm_to_min(bad)
            raise AssertionError("accepted %r" % (bad,))
        except ValueError:
            pass


def test_merge_reports_every_error_and_changes_nothing():
    d = config.defaults()
    new, errors = config.merge(d, {"wake": "7:00", "dawn_min": 500, "nope": 1, "wifi": 1})
    assert new == d
    assert len(errors) == 4
    assert any(e.startswith("dawn_min:") and "outside" in e for e in errors)
    assert any(e == "nope: unknown setting" for e in errors)


def test_merge_converts_kinds():
    new, errors = config.merge(config.defaults(), {"dawn_min": 20.0, "temp_offset_c": -3})
    assert errors == []
    assert new["dawn_min"] == 20 and isinstance(new["dawn_min"], int)
    assert isinstance(new["temp_offset_c"], float)


def test_save_and_load_round_trip_and_corrupt_file():
    import sys

    path = "_test_config_%s.json" % sys.implementation.name  # both interpreters run at once
    cfg, _ = config.merge(config.defaults(), {"bedtime": "23:15"})
    config.save(cfg, path)
    loaded, ok = config.load(path)
    assert ok and loaded == cfg
    with open(path, "w") as f:
        f.write('{"bedtime": "23:1')
    loaded, ok = config.load(path)
    assert not ok and loaded == config.defaults()
    import os

    os.remove(path)


def test_settings_that_clash_are_refused_and_never_loaded():
    import sys

    # Each value is fine alone, but a 40-minute night cannot hold a 30-minute dawn + 10 min.
    d = config.defaults()
    new, errors = config.merge(d, {"bedtime": "23:00", "wake": "23:30"})
    assert new == d and len(errors) == 1 and errors[0].startswith("schedule:")
    path = "_clash_%s.json" % sys.implementation.name
    bad = dict(d)
    bad["bedtime"] = "23:00"
    bad["wake"] = "23:30"
    config.save(bad, path)
    loaded, ok = config.load(path)  # the device boots on the defaults instead of crashing
    assert not ok and loaded == config.defaults()
    import os

    os.remove(path)
