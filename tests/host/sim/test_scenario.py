"""Night scenario format: one-line errors, defaults, idempotent validation, seeded nights."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nightstand.errors import UserError
from nightstand.sim import scenario as scen

BASE: dict[str, Any] = {"start": "2026-01-15T22:00", "duration_s": 28800}


def _with(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return raw


def _error(raw: Any, source: str = "night.json") -> str:
    with pytest.raises(UserError) as info:
        scen.validate(raw, source)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"scenario {source}: "), msg
    return msg


# Representative mistakes: (raw scenario, words the one-line message must contain).
MISTAKES: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    (_with(persn={}), ("top level", "unknown key 'persn'", "did you mean 'person'")),
    (_with(person={"hr_sleep": 50}), ("person", "'hr_sleep'", "hr_sleep_bpm")),
    (_with(events={"arousal": []}), ("events", "did you mean 'arousals'")),
    (_with(events={"arousals": [{"at": 3600, "surge": 5}]}), ("events.arousals[0]", "'surge'")),
    (_with(duration_s="8h"), ("duration_s", "must be a number")),
    (_with(person={"hr_sleep_bpm": True}), ("person.hr_sleep_bpm", "must be a number")),
    (_with(person={"skin_type": 2.5}), ("person.skin_type", "whole number")),
    (_with(events={"arousals": {"at": 100}}), ("events.arousals", "must be a list")),
    (_with(room={"light": []}), ("room.light", "non-empty list")),
    (_with(person={"spo2_pct": 120}), ("person.spo2_pct", "out of range", "70", "100")),
    (_with(duration_s=10), ("duration_s", "out of range")),
    (_with(events={"arousals": [{"at": 100, "pwa_drop": 1.5}]}),
     ("events.arousals[0].pwa_drop", "out of range")),
    (_with(room={"temp_c": [{"at": 3600, "value": 20}, {"at": 60, "value": 21}]}),
     ("room.temp_c[1]", "before the previous entry", "time order")),
    (_with(room={"light": [{"at": "23:30", "lux": 0}, {"at": "23:00", "lux": 50}]}),
     ("room.light[1]", "time order")),
    (_with(wake="25:00"), ("wake", "'25:00' is not a time", "HH:MM")),
    (_with(wake="7am"), ("wake", "is not a time")),
    (_with(wake="03:00Z"), ("wake", "UTC offset")),
    (_with(bedtime="2026-01-16T01:00+01:00"), ("bedtime", "UTC offset")),
    (_with(start="tonight"), ("start", "not an ISO date-time")),
    (_with(start="2026-01-15T22:00+01:00"), ("start", "utc_offset_s")),
    (_with(bedtime="23:00", wake="22:30", duration_s=90000),
     ("bedtime/lights_out/wake", "in order")),
    (_with(bedtime="23:00", lights_out="22:45"), ("bedtime/lights_out/wake", "in order")),
    (_with(wake="07:00", duration_s=3600), ("wake", "after the end of the night", "duration_s")),
    (_with(bedtime=-5), ("bedtime", "before the start")),
    (_with(events={"finger_off": [{"at": 28000, "duration_s": 1200}]}),
     ("events.finger_off[0]", "after the end", "shorten")),
    (_with(events={"motion": [{"duration_s": 5}]}), ("events.motion[0]", "needs 'at'")),
    (_with(room={"temp_c": [{"at": 0}]}), ("room.temp_c[0]", "needs both")),
    (_with(utc_offset_changes=[{"at": "02:00"}]), ("utc_offset_changes[0]", "utc_offset_s")),
    (_with(utc_offset_changes=[{"at": "04:00", "utc_offset_s": 0},
                               {"at": "02:00", "utc_offset_s": 3600}]),
     ("utc_offset_changes[1]", "time order")),
    (_with(format=2), ("format", "version 2 is not supported")),
    (_with(name=5), ("name", "must be a string")),
    (_with(wake="end"), ("wake", "'end' cannot be used")),
]


@pytest.mark.parametrize(("raw", "words"), MISTAKES,
                         ids=[", ".join(w[:2]) for _r, w in MISTAKES])
def test_mistakes_give_one_clear_line(raw: dict[str, Any], words: tuple[str, ...]) -> None:
    msg = _error(raw)
    for word in words:
        assert word in msg, (word, msg)


def test_top_level_must_be_an_object() -> None:
    assert "must be a JSON object" in _error([1, 2])


def test_load_scenario_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(UserError, match=r"nope\.json: file not found"):
        scen.load_scenario(missing)
    bad = tmp_path / "bad.json"
    bad.write_text('{"start": "2026-01-15T22:00",\n "wake": }\n')
    with pytest.raises(UserError, match=r"bad\.json: not valid JSON at line 2 column"):
        scen.load_scenario(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"person": {"rmssd": 40}}))
    with pytest.raises(UserError, match=r"scenario .*wrong\.json: person: unknown key 'rmssd'"):
        scen.load_scenario(wrong)


def test_defaults_are_filled() -> None:
    sc = scen.validate({})
    assert sc["format"] == scen.FORMAT_VERSION
    assert sc["start"] == "2026-01-15T22:00:00"
    assert sc["duration_s"] == 8 * 3600.0
    assert (sc["bedtime"], sc["lights_out"], sc["wake"]) == (0.0, 900.0, 8 * 3600.0 - 900.0)
    for key, default in scen.PERSON_DEFAULTS.items():
        if default is not None:
            assert sc["person"][key] == default, key
    # DC levels derived from the skin type when not given.
    ir_f, red_f = scen.skin_factors(3)
    assert sc["person"]["ir_dc_na_per_ma"] == pytest.approx(1200.0 * ir_f, abs=0.05)
    assert sc["person"]["red_dc_na_per_ma"] == pytest.approx(1000.0 * red_f, abs=0.05)
    assert sc["sensor"] == scen.SENSOR_DEFAULTS
    assert sc["events"]["arousals"] == [] and sc["events"]["ectopic"]["rate_per_hour"] == 0.0
    # Default light: evening light, dark at lights-out, daylight at wake.
    assert [seg["at"] for seg in sc["room"]["light"]] == [0.0, 900.0, 8 * 3600.0 - 900.0]
    assert sc["room"]["light"][1]["lux"] < 1.0
    a = scen.validate(_with(events={"arousals": [{"at": 4000}]}))["events"]["arousals"][0]
    assert a == {"at": 4000.0, **scen.AROUSAL_DEFAULTS}


def test_skin_type_darkens_red_more_than_ir() -> None:
    light = scen.validate({"person": {"skin_type": 1}})["person"]
    dark = scen.validate({"person": {"skin_type": 6}})["person"]
    assert dark["ir_dc_na_per_ma"] < light["ir_dc_na_per_ma"]
    assert (dark["red_dc_na_per_ma"] / light["red_dc_na_per_ma"]
            < dark["ir_dc_na_per_ma"] / light["ir_dc_na_per_ma"])


def test_default_lights_out_follows_a_late_bedtime_or_an_early_wake() -> None:
    late = scen.validate(_with(bedtime=18000))
    assert (late["lights_out"], late["wake"]) == (18900.0, 27900.0)
    short = scen.validate(_with(wake=600))
    assert short["bedtime"] <= short["lights_out"] <= short["wake"] == 600.0


def test_time_syntax() -> None:
    sc = scen.validate(_with(bedtime="22:30", lights_out="23:05:30", wake="2026-01-16T06:00",
                             button_presses=["start", 60, "end", "22:00:00.5"],
                             room={"temp_c": [{"at": "start", "value": 20},
                                              {"at": "end", "value": 18}]}))
    assert sc["bedtime"] == 1800.0
    assert sc["lights_out"] == 3930.0
    assert sc["wake"] == 8 * 3600.0
    # "HH:MM" is the next such wall-clock time at or after the start; "end" is duration_s.
    assert sc["button_presses"] == [0.0, 0.5, 60.0, 28800.0]
    assert [p["at"] for p in sc["room"]["temp_c"]] == [0.0, 28800.0]
    # Times on the following day and the same wall time a day later.
    assert scen.validate(_with(wake="21:00", duration_s=90000))["wake"] == 23 * 3600.0


def test_events_in_any_order_are_sorted() -> None:
    sc = scen.validate(_with(events={
        "arousals": [{"at": "03:00"}, {"at": "01:00"}],
        "motion": [{"at": 9000, "duration_s": 5}, {"at": 5000, "duration_s": 5}],
        "ectopic": {"times": [7000, 3000]}}))
    assert [a["at"] for a in sc["events"]["arousals"]] == [3 * 3600.0, 5 * 3600.0]
    assert [m["at"] for m in sc["events"]["motion"]] == [5000.0, 9000.0]
    assert sc["events"]["ectopic"]["times"] == [3000.0, 7000.0]


def test_dst_spring_forward() -> None:
    # Last Sunday of March in Europe/Berlin: 02:00 CET -> 03:00 CEST.
    raw = {"start": "2026-03-28T22:00", "utc_offset_s": 3600, "duration_s": 36000,
           "utc_offset_changes": [{"at": "02:00", "utc_offset_s": 7200}],
           "wake": "07:00", "bedtime": "23:00", "button_presses": ["01:30", "02:30", "03:30"]}
    sc = scen.validate(raw)
    assert sc["utc_offset_changes"] == [{"at": 4 * 3600.0, "utc_offset_s": 7200}]
    assert sc["bedtime"] == 3600.0
    assert sc["wake"] == 8 * 3600.0  # 22:00 -> 07:00 across the lost hour is 8 h
    # 02:30 does not exist that night: it maps to the instant of the change.
    assert sc["button_presses"] == [3.5 * 3600, 4 * 3600.0, 4.5 * 3600]
    assert scen.start_unix_s(sc) == pytest.approx(1774731600.0)  # 2026-03-28T21:00Z


def test_dst_fall_back() -> None:
    # Last Sunday of October: 03:00 CEST -> 02:00 CET; 02:30 happens twice (the first is used).
    raw = {"start": "2026-10-24T22:00", "utc_offset_s": 7200, "duration_s": 36000,
           "utc_offset_changes": [{"at": "03:00", "utc_offset_s": 3600}],
           "wake": "06:00", "button_presses": ["02:30", "03:30"]}
    sc = scen.validate(raw)
    assert sc["utc_offset_changes"] == [{"at": 5 * 3600.0, "utc_offset_s": 3600}]
    assert sc["wake"] == 9 * 3600.0  # 22:00 -> 06:00 with the extra hour is 9 h
    assert sc["button_presses"] == [4.5 * 3600, 6.5 * 3600]


def test_default_json_loads_and_matches_its_story() -> None:
    sc = scen.default_scenario()
    assert sc == scen.load_scenario(scen.SCENARIO_DIR / "default.json")
    # 20:30 to 06:30: the whole evening wind-down (from 19:30) and the night with its dawn.
    assert sc["duration_s"] == 10 * 3600.0
    hour = 3600.0
    assert (sc["bedtime"], sc["lights_out"], sc["wake"]) == (2 * hour, 2.5 * hour, 9.5 * hour)
    assert len(sc["events"]["arousals"]) == 15
    # The bathroom trip at 03:00: finger off, light on.
    trip_s = 6.5 * hour
    assert sc["events"]["finger_off"] == [{"at": trip_s, "duration_s": 360.0}]
    lux = {seg["at"]: seg["lux"] for seg in sc["room"]["light"]}
    assert lux[trip_s] >= 50 and lux[2.5 * hour] < 1


def _canonical(sc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(sc))
    return out


def test_validate_is_idempotent_on_the_shipped_and_hand_made_scenarios() -> None:
    raws = [scen.default_scenario(), {},
            json.loads((scen.SCENARIO_DIR / "default.json").read_text()),
            _with(utc_offset_changes=[{"at": "02:00", "utc_offset_s": 7200}], wake="06:30",
                  room={"light": [{"at": "start", "lux": 30, "ramp_s": 60, "note": "x"}]})]
    for raw in raws:
        once = scen.validate(raw)
        assert scen.validate(once) == once
        assert scen.validate(_canonical(once)) == once  # survives a JSON round trip


SEEDS = st.integers(min_value=0, max_value=2**40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_random_scenario_valid_deterministic_and_idempotent(seed: int) -> None:
    raw = scen.random_scenario(seed)
    assert raw == scen.random_scenario(seed)
    json.dumps(raw)  # plain JSON types only
    sc = scen.validate(raw, f"random-{seed}")
    assert scen.validate(sc) == sc
    assert sc["seed"] == seed
    assert 6 * 3600 <= sc["wake"] - sc["lights_out"] <= 8.5 * 3600 + 1
    assert 0 < sc["bedtime"] < sc["lights_out"] < sc["wake"] < sc["duration_s"]
    # Arousals stay clear of finger-off and motion periods, so every one is scorable.
    ev = sc["events"]
    blocked = [(p["at"], p["at"] + p["duration_s"]) for p in ev["finger_off"] + ev["motion"]]
    for a in ev["arousals"]:
        assert sc["lights_out"] < a["at"] < sc["wake"]
        for lo, hi in blocked:
            assert a["at"] + a["duration_s"] <= lo or a["at"] >= hi, (a, lo, hi)
    for lo, hi in blocked:
        assert sc["lights_out"] < lo < hi < sc["wake"]
    lux = [seg["lux"] for seg in sc["room"]["light"]]
    assert max(lux) >= 50 and min(lux) <= 0.5


def test_random_scenarios_vary() -> None:
    nights = [scen.validate(scen.random_scenario(seed)) for seed in range(12)]
    for key in ("hr_sleep_bpm", "rmssd_ms", "resp_rate_bpm", "skin_type"):
        assert len({n["person"][key] for n in nights}) >= 4, key
    assert len({len(n["events"]["arousals"]) for n in nights}) >= 4
    assert len({n["start"] for n in nights}) == 12
    assert scen.random_scenario(1) != scen.random_scenario(2)


def test_confounder_scenario_adds_pwa_only_and_hr_only_events_apart_from_arousals():
    base = scen.random_scenario(4)
    sc = scen.validate(scen.confounder_scenario(4))
    ev = sc["events"]
    assert ev["arousals"] == scen.validate(base)["events"]["arousals"]  # base night unchanged
    assert ev["pwa_dips"] and ev["hr_surges"]
    assert all(0.2 <= d["drop"] <= 0.6 for d in ev["pwa_dips"])
    assert all(8 <= c["rise_bpm"] <= 20 for c in ev["hr_surges"])
    for c in ev["pwa_dips"] + ev["hr_surges"]:
        for a in ev["arousals"]:
            assert c["at"] + c["duration_s"] <= a["at"] or c["at"] >= a["at"] + a["duration_s"]
    assert scen.validate(sc) == sc
