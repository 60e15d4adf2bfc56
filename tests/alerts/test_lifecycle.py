"""When a same-level forecast sends an Update: each trigger and each non-trigger of the rule in
floodwarn/alerts/lifecycle.py, on hand-built warnings."""

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import box

from floodwarn.alerts.cap import Community, MunicipalWarning
from floodwarn.alerts.lifecycle import (
    FACTS_VERSION,
    InForce,
    decide,
    depth_bands_m,
    material_facts,
)
from floodwarn.parameters import LevelRules, load_parameters

START = datetime(2020, 5, 31, 6, 0, tzinfo=UTC)
EXPIRES = START + timedelta(hours=72)
MUNI = "SLV-ADM2-1"


def _community(name="Colonia Ribera", level="roja", depth_m=1.6, hours=5.0,
               shelters=(("Centro Escolar Uno", 200),), people=820, unmet=0):
    return Community(name, level, depth_m, people, hours, shelters, unmet=unmet)


def _warning(*communities, level="roja", start=START, probability=None):
    return MunicipalWarning(
        municipality_id=MUNI, municipality="San Salvador", department="San Salvador",
        department_code="SV-SS", level=level, forecast_start=start, expires=EXPIRES,
        area=box(-89.25, 13.65, -89.15, 13.75),
        communities=communities or (_community(),), probability=probability)


def _in_force(warning):
    """The message in force for ``warning``, its facts stored as JSON and read back."""
    facts = json.loads(json.dumps(material_facts(warning)))
    return {MUNI: InForce(MUNI, "fw-1", "s", START, warning.level, expires=EXPIRES,
                          facts=facts)}


def _decide(sent, new):
    return decide(_in_force(sent), {MUNI: new})


def _update(sent, new):
    (decision,) = _decide(sent, new)
    assert decision.msg_type == "Update" and decision.previous.identifier == "fw-1"
    assert decision.facts == material_facts(new)  # what to keep with the new message
    return decision.reason


def test_depth_bands_are_those_of_the_level_rules():
    assert depth_bands_m(load_parameters(LevelRules)) == (0.15, 0.5, 1.0, 1.5)


def test_facts_are_compact_json_sorted_by_name():
    w = _warning(_community("Zeta", "naranja", 0.7, 10.0, (("B", 5),)),
                 _community("Alfa", "roja", 1.2, None, (("A", 9), ("B", 1))))
    facts = material_facts(w)
    assert facts == {
        "version": FACTS_VERSION,
        "communities": {
            "Alfa": {"level": "roja", "depth_band_m": 1.0, "onset": None},
            "Zeta": {"level": "naranja", "depth_band_m": 0.5,
                     "onset": "2020-05-31T16:00+00:00"}},
        "shelters": ["A", "B"]}
    assert json.loads(json.dumps(facts)) == facts


def test_a_name_twice_keeps_the_most_severe():
    w = _warning(_community("Ribera", "amarilla", 0.3, 20.0),
                 _community("Ribera", "roja", 1.1, None),
                 _community("Ribera", "naranja", 0.6, 8.0))
    assert material_facts(w)["communities"] == {
        "Ribera": {"level": "roja", "depth_band_m": 1.0, "onset": "2020-05-31T14:00+00:00"}}


def test_the_same_facts_from_a_later_run_send_nothing():
    sent = _warning()
    later_run = _warning(_community(hours=2.0), start=START + timedelta(hours=3))  # same onset
    assert _decide(sent, sent) == []
    assert _decide(sent, later_run) == []


def test_figures_that_committees_do_not_act_on_send_nothing():
    sent = _warning()
    new = _warning(_community(depth_m=1.9, people=1500, unmet=300,
                              shelters=(("Centro Escolar Uno", 350),)), probability=0.7)
    assert _decide(sent, new) == []


def test_new_community_at_risk_sends_an_update_naming_it():
    sent = _warning()
    new = _warning(_community(), _community("Loma Linda", "naranja", 0.6, 9.0, ()))
    assert _update(sent, new) == "new communities at risk: Loma Linda"


def test_community_no_longer_at_risk_alone_sends_nothing():
    sent = _warning(_community(), _community("Loma Linda", "naranja", 0.6, 9.0, ()))
    assert _decide(sent, _warning()) == []
    # ... and it flickering back in is not news either: the message in force still names it
    assert _decide(sent, sent) == []


def test_community_level_raised_within_the_same_municipal_level():
    sent = _warning(_community(), _community("Loma Linda", "amarilla", 0.6, 9.0, ()))
    raised = _warning(_community(), _community("Loma Linda", "naranja", 0.6, 9.0, ()))
    assert _update(sent, raised) == "community level raised: Loma Linda amarilla → naranja"
    assert _decide(raised, sent) == []  # lowered: nothing


@pytest.mark.parametrize(("sent_m", "new_m", "update"), [
    (0.6, 0.9, False),   # within 0.5-1.0 m
    (0.9, 1.1, True),    # into 1.0-1.5 m: dangerous for all
    (1.2, 1.6, True),
    (1.6, 1.2, False),   # shallower: nothing
    (1.6, 4.0, False),   # already in the deepest band
])
def test_deeper_band_sends_an_update(sent_m, new_m, update):
    sent = _warning(_community(depth_m=sent_m))
    new = _warning(_community(depth_m=new_m))
    if update:
        assert _update(sent, new).startswith("deeper water: Colonia Ribera ≥")
    else:
        assert _decide(sent, new) == []


def test_depth_wobbling_across_a_bound_sends_one_message():
    sent = _warning(_community(depth_m=1.01))  # the Update for the crossing went out
    for wobble in (0.99, 1.01, 0.98):
        assert _decide(sent, _warning(_community(depth_m=wobble))) == []


@pytest.mark.parametrize(("shift_h", "reason"), [
    (-3.0, "flooding sooner: Colonia Ribera −3 h"),
    (-2.5, None),
    (+5.5, None),
    (+6.0, "flooding later: Colonia Ribera +6 h"),
])
def test_onset_moves(shift_h, reason):
    sent = _warning(_community(hours=10.0))
    new = _warning(_community(hours=10.0 + shift_h))
    if reason is None:
        assert _decide(sent, new) == []
    else:
        assert _update(sent, new) == reason


def test_onset_drift_counts_from_the_message_sent_not_the_last_run():
    sent = _warning(_community(hours=10.0))
    # runs 1 h apart, each 1 h earlier than the last: the third is 3 h earlier than what
    # committees were told
    assert _decide(sent, _warning(_community(hours=9.0))) == []
    assert _decide(sent, _warning(_community(hours=8.0))) == []
    assert "−3 h" in _update(sent, _warning(_community(hours=7.0)))


def test_onset_first_known_sends_an_update_but_lost_does_not():
    unknown = _warning(_community(hours=None))
    known = _warning(_community(hours=4.0))
    assert _update(unknown, known) == \
        "flooding sooner: Colonia Ribera 2020-05-31T10:00+00:00"
    assert _decide(known, unknown) == []


def test_changed_shelters_send_an_update_either_way():
    sent = _warning()
    moved = _warning(_community(shelters=(("Centro Escolar Uno", 100), ("Iglesia", 100))))
    assert _update(sent, moved) == "shelters changed: +Iglesia"
    assert _update(moved, sent) == "shelters changed: −Iglesia"


def test_every_trigger_is_in_the_reason():
    sent = _warning(_community(depth_m=0.6, hours=10.0))
    new = _warning(_community(depth_m=1.1, hours=6.0, shelters=(("Iglesia", 820),)),
                   _community("Loma Linda", "naranja", 0.6, 9.0, ()))
    assert _update(sent, new) == (
        "new communities at risk: Loma Linda; deeper water: Colonia Ribera ≥1 m (≥0.5 m); "
        "flooding sooner: Colonia Ribera −4 h; "
        "shelters changed: +Iglesia, −Centro Escolar Uno")


def test_level_change_is_an_update_as_before_with_its_reason():
    sent = _warning(_community("Colonia Ribera", "naranja", 0.6), level="naranja")
    new = _warning(_community("Colonia Ribera", "roja", 0.6))
    assert _update(sent, new) == "level raised: naranja → roja; community level raised: " \
                                 "Colonia Ribera naranja → roja"
    assert _update(new, sent) == "level lowered: roja → naranja"


def test_longer_danger_extends_with_its_reason():
    sent = _warning()
    later = dataclasses.replace(sent, expires=EXPIRES + timedelta(hours=6))
    assert _update(sent, later).startswith("danger lasts beyond the expiry in force")


def test_without_stored_facts_only_level_and_expiry_count():
    old = {MUNI: InForce(MUNI, "fw-1", "s", START, "roja", expires=EXPIRES)}
    new = _warning(_community(hours=1.0, shelters=()), _community("Loma Linda", "roja", 2.0))
    assert decide(old, {MUNI: new}) == []


@pytest.mark.parametrize("stored", [
    {"version": 0, "communities": {}, "shelters": []},
    {"version": FACTS_VERSION, "communities": {"X": {"level": "roja"}}, "shelters": []},
    {"something": "else"},
])
def test_unreadable_facts_send_the_current_picture(stored):
    old = {MUNI: InForce(MUNI, "fw-1", "s", START, "roja", expires=EXPIRES, facts=stored)}
    (update,) = decide(old, {MUNI: _warning()})
    assert update.msg_type == "Update"
    assert update.reason.startswith("cannot compare with the message in force")


def test_alert_and_cancel_say_why_and_thresholds_are_keywords():
    (alert,) = decide({}, {MUNI: _warning()})
    assert (alert.msg_type, alert.reason) == ("Alert", "new roja warning")
    assert alert.facts == material_facts(_warning())
    (cancel,) = decide(_in_force(_warning()), {})
    assert cancel.msg_type == "Cancel" and cancel.facts is None
    assert cancel.reason == "no settlement at amarilla or above any more"
    sent = _warning(_community(hours=10.0))
    assert decide(_in_force(sent), {MUNI: _warning(_community(hours=8.0))},
                  onset_earlier_h=2.0)[0].reason == "flooding sooner: Colonia Ribera −2 h"
