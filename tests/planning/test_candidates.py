"""Candidate shelter upgrades: the defaults from models/shelter_upgrades.yaml, a planner's file
checked row by row, and a new site's safety read from a depth map by the centre rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from floodwarn.errors import InputError
from floodwarn.parameters import LevelRules, ShelterUpgradeStandard, load_parameters
from floodwarn.planning.candidates import (
    default_actions,
    read_candidate_actions,
    site_status_from_depth,
)


def test_defaults_enlarge_schools_churches_and_halls_and_proof_those_that_flood():
    standard = load_parameters(ShelterUpgradeStandard)
    centres = pd.DataFrame({
        "id": ["1", "2", "3", "4", "5", "6"],
        "name": ["Centro Escolar Cantón El Jícaro", "Iglesia San José", "UCSF Guazapa",
                 "MINSAL Región Occidental", "Casa Comunal La Canoa", "Cancillería"],
        "kind": ["school", "church", "health_unit", "hall", "hall", "hall"]})
    floods = np.array([True, False, True, True, False, False])
    actions = default_actions(centres, floods, standard)
    grown = actions[actions["kind"] == "capacity"]
    # Offices (by name, accents ignored) and clinics are never enlarged as shelters.
    assert grown["site_id"].tolist() == ["1", "2", "5"]
    assert (grown["places"] == 100).all()  # 350 m² at Sphere's 3.5 m² a person
    assert (grown["cost"] == 350 * 450).all()
    proofed = actions[actions["kind"] == "flood_safe"]
    assert proofed["site_id"].tolist() == ["1"]  # the school that floods; not the clinic
    assert actions["action_id"].is_unique


def test_a_planners_file_names_every_bad_row(tmp_path):
    path = tmp_path / "actions.csv"
    path.write_text(
        "action_id,kind,site_id,places,cost,name,lon,lat\n"
        "a1,capacity,10,120,90000,,,\n"
        "a2,capacity,99,120,90000,,,\n"          # not a centre
        "a3,enlarge,10,120,90000,,,\n"           # unknown kind
        "a1,flood_safe,10,0,50000,,,\n"          # repeated id
        "a5,new_site,N1,300,-5,Nuevo,-89.2,13.7\n"  # negative cost
        "a6,new_site,N2,0,1000,Otro,-200,13.7\n")   # no places, lon off the globe
    with pytest.raises(InputError) as error:
        read_candidate_actions(path, {"10", "11"})
    message = str(error.value)
    for expected in ("line 3 (a2): site '99'", "line 4 (a3): kind 'enlarge'",
                     "line 5 (a1): action_id missing or repeated", "line 6 (a5): cost",
                     "line 7 (a6): places", "line 7 (a6): lon/lat"):
        assert expected in message
    path.write_text("action_id,kind,site_id,places,cost,name,lon,lat\n"
                    "a1,capacity,10,120,90000,,,\n"
                    "a2,new_site,N1,300,250000,Nuevo albergue,-89.2,13.7\n")
    good = read_candidate_actions(path, {"10"})
    assert good["places"].tolist() == [120, 300] and good["cost"].tolist() == [90000, 250000]
    with pytest.raises(InputError, match="columns \\['cost'\\] are missing"):
        (tmp_path / "short.csv").write_text("action_id,kind,site_id,places\na,capacity,10,1\n")
        read_candidate_actions(tmp_path / "short.csv", {"10"})


def test_new_site_safety_from_a_depth_map():
    rules = load_parameters(LevelRules).centres  # 50 m site, 300 m margin; 0.15 / 0.5 m
    depth = np.zeros((40, 40), np.float32)
    depth[5, 5] = 0.2          # water on site A (cell 5,5)
    depth[20, 23] = 0.6        # 270 m from site B at (20,20): deep water in its margin
    depth[30, 33] = 0.2        # 270 m from site C at (30,30): shallow water in its margin
    depth[10, 30] = np.nan     # a channel: not a flood
    status = site_status_from_depth(depth, np.array([5, 20, 30, 10, 60]),
                                    np.array([5, 20, 30, 30, 5]), 90.0, rules)
    assert status.tolist() == ["unsafe", "unsafe", "at_risk", "safe", "unsafe"]
