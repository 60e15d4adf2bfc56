"""hydrographs.nc as a run writes it: chunks encoded where a member ran, stored directly."""

import netCDF4
import numpy as np
import pytest
import xarray as xr

from floodwarn.io.forecast_outputs import (
    DISCHARGE_MANTISSA_BITS,
    HydrographsFile,
    bit_round,
    encode_discharge_chunks,
    write_hydrographs,
)


def test_bit_rounding_keeps_the_relative_error_within_half_a_unit():
    x = np.random.default_rng(0).lognormal(0.0, 4.0, 100_000).astype(np.float32)
    rounded = bit_round(x, DISCHARGE_MANTISSA_BITS)
    assert np.max(np.abs(rounded - x) / x) <= 2.0 ** -(DISCHARGE_MANTISSA_BITS + 1)
    assert np.unique(rounded.view(np.uint32) & ((1 << 13) - 1)).tolist() == [0]
    special = np.array([0.0, -2.5, np.inf, np.nan], np.float32)
    np.testing.assert_array_equal(bit_round(special, 10), special)
    with pytest.raises(ValueError, match="keep_bits"):
        bit_round(x, 23)


@pytest.mark.parametrize("n_reach", [7, 4096, 5000])  # smaller than, one, and 1.2 chunks
def test_members_stored_as_encoded_chunks_read_back_as_rounded_values(tmp_path, n_reach):
    rng = np.random.default_rng(n_reach)
    members = rng.gamma(2.0, 50.0, (3, n_reach, 6)).astype(np.float32)
    bands = {"discharge_p50": np.median(members, axis=0)}
    times = np.datetime64("2020-06-01T00:00", "s") + np.arange(7) * np.timedelta64(3600, "s")
    path = write_hydrographs(
        tmp_path / "hydrographs.nc", reach_id=np.arange(1, n_reach + 1),
        step_start=times[:-1], step_end=times[1:], discharge_m3s=members,
        members=np.array([0, 1, 2]), attrs={"synthetic": True}, water_bodies=("lago",),
        water_body_series={"level_m": np.full((3, 1, 6), 410.5)}, bands=bands)
    with xr.open_dataset(path) as nc:  # netCDF-C and HDF5's own filters decode the chunks
        np.testing.assert_array_equal(nc["discharge"].to_numpy(),
                                      bit_round(members, DISCHARGE_MANTISSA_BITS))
        np.testing.assert_array_equal(nc["discharge_p50"].to_numpy(),
                                      bit_round(bands["discharge_p50"], 10))
        assert nc["water_body_level_m"].to_numpy()[2, 0, 5] == 410.5
        assert nc["discharge"].encoding["zlib"] and nc["discharge"].encoding["shuffle"]
        assert nc.attrs["synthetic"] == "true"
    chunks = encode_discharge_chunks(members[0])
    assert len(chunks) == -(-n_reach // 4096)


def test_an_aborted_file_leaves_nothing_and_members_may_arrive_in_any_order(tmp_path):
    times = np.datetime64("2020-06-01T00:00", "s") + np.arange(3) * np.timedelta64(3600, "s")
    kwargs = {"reach_id": np.arange(1, 4), "step_start": times[:-1], "step_end": times[1:],
              "members": np.array([0, 1]), "attrs": {}}
    aborted = HydrographsFile(tmp_path / "a.nc", **kwargs)
    aborted.write_member(1, encode_discharge_chunks(np.ones((3, 2), np.float32)))
    aborted.abort()
    assert list(tmp_path.iterdir()) == []
    written = HydrographsFile(tmp_path / "b.nc", **kwargs)
    written.write_member(1, encode_discharge_chunks(np.full((3, 2), 2.0, np.float32)))
    written.write_member(0, encode_discharge_chunks(np.full((3, 2), 1.0, np.float32)))
    path = written.finish()
    with netCDF4.Dataset(path) as nc:
        np.testing.assert_array_equal(nc["discharge"][:, 0, 0], [1.0, 2.0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.nc"]
