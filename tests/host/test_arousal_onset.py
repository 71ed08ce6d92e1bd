"""Arousal scores attributed to the epoch of the onset (host side of the device's rule)."""

from nightstand.night import arousal_scores_at_onset
from nsdev.core import vocab


def _ev(unix_ms, strength):
    return {"type": "event", "kind": vocab.EV_AROUSAL, "unix_ms": unix_ms,
            "values": [12000, strength]}


def test_late_confirmed_arousal_scores_its_onset_epoch():
    epochs = [{"unix_s": 1000 + 30 * k, "arousal_score": 0.0} for k in range(4)]
    epochs[2]["arousal_score"] = 0.3  # an arousal the device scored itself
    events = [_ev(1059_500, 620), _ev(1065_000, 200), _ev(2000_000, 900),
              {"kind": vocab.EV_AROUSAL, "unix_ms": 1010_000, "values": []}]
    arousal_scores_at_onset(epochs, events)
    # onset 1059.5 s lies in the epoch starting 1030 s; 1065 s in 1060 s (kept: 0.3 > 0.2);
    # an onset with no epoch around it and an event without values change nothing
    assert [e["arousal_score"] for e in epochs] == [0.0, 0.62, 0.3, 0.0]


def test_unknown_epoch_score_gets_the_event_and_other_events_are_ignored():
    epochs = [{"unix_s": 0, "arousal_score": None}, {"unix_s": 30, "arousal_score": None}]
    arousal_scores_at_onset(epochs, [_ev(31_000, 1000),
                                     {"kind": vocab.EV_AROUSAL + 1, "unix_ms": 1000,
                                      "values": [1, 500]}])
    assert epochs[0]["arousal_score"] is None
    assert epochs[1]["arousal_score"] == 1.0
