"""The shipped warning levels (models/levels.yaml) against a table of cases worked out from
its bounds, and the rule that no level is given to a place with no water or nobody in it."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from floodwarn.errors import InputError
from floodwarn.parameters import LEVELS, LevelRules, load_parameters
from floodwarn.risk.settlements import warning_levels

RULES = load_parameters(LevelRules)

# max depth (m), people exposed, hours to flooding (NaN: never), return period → level
CASES = [
    (0.0, 0, np.nan, 0, "verde"),          # nothing floods
    (0.0, 0, np.nan, 100, "verde"),        # a 100-year river that stays out of town
    (0.10, 40, 3.0, 5, "verde"),           # wet streets below 15 cm
    (0.15, 1, 20.0, 0, "amarilla"),        # the first wet cell with someone in it
    (0.40, 5_000, 2.0, 25, "amarilla"),    # shallow water, many people: dangerous for some
    (0.30, 0, 10.0, 50, "verde"),          # water on empty land
    (0.50, 20, 24.0, 2, "naranja"),        # dangerous for most, people in it
    (0.50, 19, 24.0, 2, "amarilla"),
    (1.00, 1, 30.0, 0, "naranja"),         # a metre of water reaching anyone
    (0.90, 400, 12.0, 10, "naranja"),
    (0.60, 250, 5.0, 10, "roja"),          # deep enough, many people, little time left
    (0.60, 250, 7.0, 10, "naranja"),       # the same with more than 6 h to act
    (1.00, 500, 48.0, 5, "roja"),          # dangerous for all, a neighbourhood in it
    (1.00, 499, 48.0, 5, "naranja"),
    (1.50, 100, 40.0, 0, "roja"),
    (1.49, 100, 40.0, 0, "naranja"),
    (8.00, 13_000, 7.0, 100, "roja"),
]


def _metrics(rows):
    return pd.DataFrame(rows, columns=["max_depth_m", "people_exposed", "hours_to_flooding",
                                       "return_period_years"]).assign(
        mean_depth_m=lambda f: f["max_depth_m"] / 2,
        flooded_share=lambda f: (f["people_exposed"] > 0).astype(float))


@pytest.mark.parametrize(("depth", "people", "hours", "rp", "expected"), CASES)
def test_shipped_levels_grade_the_cases(depth, people, hours, rp, expected):
    level, reason = warning_levels(_metrics([(depth, people, hours, rp)]), RULES)
    assert level[0] == expected, reason[0]


def test_every_level_is_used_by_some_case():
    assert {case[-1] for case in CASES} == set(LEVELS)


@given(depth=st.floats(0, 0.149), people=st.integers(0, 10**6), rp=st.integers(0, 1000),
       hours=st.floats(0, 72))
def test_no_level_without_water_on_land(depth, people, rp, hours):
    level, _ = warning_levels(_metrics([(depth, people, hours, rp)]), RULES)
    assert level[0] == "verde"


@given(depth=st.floats(0, 50), rp=st.integers(0, 1000), hours=st.floats(0, 72))
def test_no_level_without_people_in_the_water(depth, rp, hours):
    level, _ = warning_levels(_metrics([(depth, 0, hours, rp)]), RULES)
    assert level[0] == "verde"


def test_a_rule_without_water_or_people_is_refused(tmp_path):
    text = (RULES.model_dump_json())
    import json

    raw = json.loads(text)
    raw["levels"][2]["any"].append({"return_period_years": {"min": 2}})
    path = tmp_path / "levels.yaml"
    import yaml

    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match="must ask for water on land and people"):
        load_parameters(LevelRules, path)
