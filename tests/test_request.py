"""ForecastRequest: every option checked before anything is loaded, immutable, stored and read
back unchanged; the members asked for are the members run."""

import numpy as np
import pytest
from pydantic import ValidationError

from floodwarn.errors import InputError
from floodwarn.pipeline import select_members
from floodwarn.rainfall.forecast import RainfallForecast
from floodwarn.request import ForecastRequest


def _request(tmp_path, **options):
    return ForecastRequest.build(terrain_dir=tmp_path / "terrain", rain_path=tmp_path / "r.nc",
                                 **options)


@pytest.mark.parametrize(("options", "reason"), [
    ({"amc": 4}, "amc: antecedent moisture class 4 unknown; use 1, 2 or 3."),
    ({"ia_ratio": 0.1}, "ia_ratio: initial abstraction ratio 0.1 unsupported"),
    ({"amc": 2, "antecedent_rain_mm": 30.0}, "give one of ['amc', 'antecedent_rain_mm']"),
    ({"antecedent_rain_mm": -1.0}, "antecedent_rain_mm: Input should be greater than or equal"),
    ({"landcover_path": "lc.tif"}, "need both land cover (--landcover) and soil"),
    ({"members": (0, 3, 3)}, "members: a member is listed twice"),
    ({"members": (-1,)}, "member numbers are ≥ 0"),
    ({"reservoir_levels": {"cerron_grande": 500.0}}, "lies outside its storage table"),
    ({"reservoir_levels": {"lago_ficticio": 1.0}}, "unknown water body 'lago_ficticio'"),
    ({"accumulation": "daily"}, "accumulation: Input should be 'step', 'since_start' or"),
    ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
])
def test_every_option_is_checked_when_the_request_is_built(tmp_path, options, reason):
    with pytest.raises(InputError, match=None) as caught:
        _request(tmp_path, **options)
    assert str(caught.value).startswith("forecast request: ")
    assert reason in str(caught.value)


def test_a_request_is_immutable_and_round_trips_through_json(tmp_path):
    request = _request(tmp_path, amc=3, members=(4, 0),
                       reservoir_levels={"cerron_grande": 240.5, "ilopango": 440.5})
    with pytest.raises(ValidationError):
        request.amc = 1  # type: ignore[misc]
    stored = request.to_json()
    assert stored == {"amc": 3, "members": [4, 0],
                      "reservoir_levels": {"cerron_grande": 240.5, "ilopango": 440.5},
                      "terrain_dir": str(tmp_path / "terrain"),
                      "rain_path": str(tmp_path / "r.nc")}
    assert ForecastRequest.model_validate(stored) == request
    levels = request.reservoir_levels_m
    assert levels is not None
    levels["cerron_grande"] = 0.0  # a copy: the request keeps what was asked
    assert request.reservoir_levels_m == {"cerron_grande": 240.5, "ilopango": 440.5}
    assert request.options.model_dump(exclude_defaults=True, exclude_none=True) == {
        "amc": 3, "members": (4, 0),
        "reservoir_levels": {"cerron_grande": 240.5, "ilopango": 440.5}}


def test_members_are_selected_in_the_order_asked_and_missing_ones_named():
    rain = np.arange(3 * 2 * 1 * 1, dtype=np.float32).reshape(3, 2, 1, 1)
    hours = np.array(["2026-11-30T00", "2026-11-30T01"], dtype="datetime64[s]")
    forecast = RainfallForecast(rain_mm=rain, step_start=hours, step_end=hours + 3600,
                                x=np.array([0.0]), y=np.array([0.0]), crs="EPSG:4326",
                                members=np.array([0, 5, 7]), metadata={"source": "ens.nc"})
    chosen = select_members(forecast, (7, 0))
    assert chosen.members.tolist() == [7, 0]
    assert chosen.rain_mm[0, :, 0, 0].tolist() == [4.0, 5.0]  # member 7's rain
    assert select_members(forecast, None) is forecast
    with pytest.raises(InputError, match=r"members \[3\] are not in the forecast ens.nc; it "
                                         r"holds members \[0, 5, 7\]"):
        select_members(forecast, (0, 3))


def test_a_rain_file_given_twice_is_named(tmp_path):
    first, second = tmp_path / "m00.nc", tmp_path / "m01.nc"
    with pytest.raises(InputError, match=r"the rain file .*m01\.nc is given twice"):
        ForecastRequest.build(terrain_dir=tmp_path, rain_path=first,
                              rain_files=(first, second, second))
    request = ForecastRequest.build(terrain_dir=tmp_path, rain_path=first,
                                    rain_files=(first, second))
    assert request.rain_source == (first, second)
