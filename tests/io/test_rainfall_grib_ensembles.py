"""GRIB2 ensembles as NCEP and ECMWF distribute them, made for real with ecCodes: GEFS APCP in
one file per member and step (buckets resetting every 6 h, 3-hourly then 6-hourly), ECMWF ENS
/ open data tp (metres, accumulated from 0, step 0 included) in one file or one per step, with
control and perturbed members (product definition template 4.11) in any order."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from floodwarn.errors import InputError
from floodwarn.io.rainfall import read_rainfall

#: A 0.25° box over El Salvador: 10 rows (15.0 → 12.75 °N) × 13 columns (90.5 → 87.5 °W).
NI, NJ = 13, 10
GEFS_STEPS = [(0, 3), (0, 6), (6, 9), (6, 12), (12, 18), (18, 24)]
#: Rain per forecast step (mm) of GEFS members 0, 1, 2 (and 3) over hours 0-3, 3-6, 6-9,
#: 9-12, 12-18, 18-24 — what the reader must give back.
GEFS_STEP_MM = {0: [1.0, 2.0, 0.5, 4.0, 3.0, 0.0],
                1: [2.0, 0.0, 1.0, 1.0, 6.0, 2.0],
                2: [0.0, 5.0, 2.0, 0.0, 1.0, 1.5],
                3: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]}


def _bucket_mm(member: int, start: int, end: int) -> float:
    """What GEFS stores for hours start-end: the sum of the steps since the bucket's start
    (by hand for member 0: 0-6 = 1 + 2 = 3, 6-12 = 0.5 + 4 = 4.5)."""
    ends = [3, 6, 9, 12, 18, 24]
    starts = [0, 3, 6, 9, 12, 18]
    return float(sum(mm for mm, s, e in zip(GEFS_STEP_MM[member], starts, ends, strict=True)
                     if s >= start and e <= end))


def _message(fh, *, member: int, start: int, end: int, value: float | np.ndarray,
             centre: str = "kwbc", ecmwf: bool = False, date: int = 20200531,
             first_lon: float = 269.5, total: int = 31, short: str = "tp") -> None:
    """Write one GRIB2 message of ensemble member ``member`` (PDT 4.11: perturbationNumber,
    accumulation over start-end h, typeOfStatisticalProcessing 1) on the El Salvador box."""
    import eccodes

    gid = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    try:
        eccodes.codes_set(gid, "centre", centre)
        if ecmwf:
            eccodes.codes_set(gid, "setLocalDefinition", 1)
            eccodes.codes_set(gid, "localDefinitionNumber", 1)
        if short == "tp":
            eccodes.codes_set(gid, "productDefinitionTemplateNumber", 11)
            if ecmwf:
                eccodes.codes_set(gid, "paramId", 228)  # tp, m
                eccodes.codes_set(gid, "dataType", "cf" if member == 0 else "pf")
            else:  # NCEP APCP: discipline 0, category 1, number 8 (kg m-2)
                for key, code in (("discipline", 0), ("parameterCategory", 1),
                                  ("parameterNumber", 8)):
                    eccodes.codes_set(gid, key, code)
                eccodes.codes_set(gid, "typeOfEnsembleForecast", 1 if member == 0 else 3)
            eccodes.codes_set(gid, "typeOfStatisticalProcessing", 1)
        else:
            eccodes.codes_set(gid, "productDefinitionTemplateNumber", 1)
            eccodes.codes_set(gid, "shortName", short)
        eccodes.codes_set(gid, "perturbationNumber", member)
        eccodes.codes_set(gid, "numberOfForecastsInEnsemble", total)
        eccodes.codes_set(gid, "dataDate", date)
        eccodes.codes_set(gid, "dataTime", 0)
        eccodes.codes_set(gid, "stepUnits", 1)
        if short == "tp":
            eccodes.codes_set(gid, "startStep", start)
        eccodes.codes_set(gid, "endStep", end)
        for key, v in (("Ni", NI), ("Nj", NJ), ("latitudeOfFirstGridPointInDegrees", 15.0),
                       ("longitudeOfFirstGridPointInDegrees", first_lon),
                       ("latitudeOfLastGridPointInDegrees", 12.75),
                       ("longitudeOfLastGridPointInDegrees", first_lon + 3.0),
                       ("iDirectionIncrementInDegrees", 0.25),
                       ("jDirectionIncrementInDegrees", 0.25)):
            eccodes.codes_set(gid, key, v)
        eccodes.codes_set(gid, "bitsPerValue", 24)
        eccodes.codes_set_values(gid, np.broadcast_to(value, (NJ, NI)).reshape(-1).astype(float))
        if short == "tp":  # what readers rely on: template 4.11 gives ecCodes' `number`
            assert eccodes.codes_get(gid, "productDefinitionTemplateNumber") == 11
            assert eccodes.codes_get(gid, "number") == member
            assert eccodes.codes_get(gid, "shortName") == "tp"
        eccodes.codes_write(gid, fh)
    finally:
        eccodes.codes_release(gid)


def _gefs_name(member: int, hour: int) -> str:
    return f"{'gec' if member == 0 else 'gep'}{member:02d}.t00z.pgrb2s.0p25.f{hour:03d}"


def _gefs(folder: Path, members=(0, 1, 2), steps=GEFS_STEPS) -> list[Path]:
    """GEFS as NOMADS serves it: one file per member and forecast hour (APCP since the last
    6-h reset); f000 holds no APCP (a 2-m temperature here)."""
    files = []
    for member in members:
        path = folder / _gefs_name(member, 0)
        with open(path, "wb") as fh:
            _message(fh, member=member, start=0, end=0, value=300.0, short="2t")
        for start, end in steps:
            path = folder / _gefs_name(member, end)
            with open(path, "wb") as fh:
                _message(fh, member=member, start=start, end=end,
                         value=_bucket_mm(member, start, end))
            files.append(path)
    return files


def test_gefs_member_files_chain_resetting_buckets_of_mixed_lengths(tmp_path):
    _gefs(tmp_path)
    fc = read_rainfall(str(tmp_path / "ge*.t00z.pgrb2s.0p25.f*"))
    assert fc.members.tolist() == [0, 1, 2]
    assert fc.rain_mm.shape == (3, 6, NJ, NI)
    for member in (0, 1, 2):
        np.testing.assert_allclose(fc.rain_mm[member, :, 4, 6], GEFS_STEP_MM[member], atol=1e-4)
    np.testing.assert_allclose(fc.step_hours, [3, 3, 3, 3, 6, 6])
    assert [str(t)[5:16] for t in fc.step_end] == [
        "05-31T03:00", "05-31T06:00", "05-31T09:00", "05-31T12:00", "05-31T18:00",
        "06-01T00:00"]
    assert str(fc.step_start[0]) == "2020-05-31T00:00:00"
    assert fc.x[0] == -90.5 and fc.x[-1] == -87.5 and fc.y[0] == 15.0 and fc.y[-1] == 12.75
    assert fc.metadata["reference_time"] == "2020-05-31T00:00:00"


def test_gefs_glob_list_and_folder_read_alike(tmp_path):
    files = _gefs(tmp_path)
    by_glob = read_rainfall(str(tmp_path / "ge*.f*"))
    shuffled = [files[i] for i in np.random.default_rng(3).permutation(len(files))]
    by_list = read_rainfall(shuffled)
    by_folder = read_rainfall(tmp_path)  # the f000 files (no APCP) are left out
    for fc in (by_list, by_folder):
        np.testing.assert_array_equal(fc.rain_mm, by_glob.rain_mm)
        np.testing.assert_array_equal(fc.step_end, by_glob.step_end)
        assert fc.members.tolist() == [0, 1, 2]


def test_missing_member_and_missing_steps_are_all_named(tmp_path):
    files = _gefs(tmp_path, members=(0, 1, 2, 3))
    gone = {_gefs_name(1, h) for h in (3, 6, 9, 12, 18, 24)}  # all of member 1
    gone |= {_gefs_name(2, 9), _gefs_name(0, 18), _gefs_name(0, 24)}
    given = [f for f in files if f.name not in gone]
    with pytest.raises(InputError) as info:
        read_rainfall(given)
    message = str(info.value)
    assert message.startswith("gec00.t00z.pgrb2s.0p25.f003 … gep03.t00z.pgrb2s.0p25.f024 "
                              "(15 files): the forecast's files do not give every member every "
                              "step exactly once: member 1 is missing (no file holds it); ")
    assert ("member 0 lacks the steps ending 2020-05-31T18:00 (+18 h), 2020-06-01T00:00 "
            "(+24 h)") in message
    assert "member 2 lacks the step ending 2020-05-31T09:00 (+9 h)" in message
    assert "member 3" not in message


def test_a_lost_reset_file_is_named_not_silently_misread(tmp_path):
    # Without gep01's 0-6 h file its 6-9 h bucket has nothing to continue.
    files = _gefs(tmp_path)
    given = [f for f in files if f.name != _gefs_name(1, 6)]
    with pytest.raises(InputError, match=r"member 1 lacks the step ending 2020-05-31T06:00 "
                                         r"\(\+6 h\)"):
        read_rainfall(given)


def test_the_same_member_and_step_in_two_files_names_both(tmp_path):
    files = _gefs(tmp_path)
    copy = tmp_path / "again" / "gep01.f006.grib2"
    copy.parent.mkdir()
    shutil.copy(tmp_path / _gefs_name(1, 6), copy)
    with pytest.raises(InputError, match=r"held twice: member 1, hours 0-6: message 1 of "
                                         r"gep01\.f006\.grib2 and message 1 of "
                                         r"gep01\.t00z\.pgrb2s\.0p25\.f006\."):
        read_rainfall([*files, copy])


def test_files_of_different_runs_or_grids_are_named(tmp_path):
    files = _gefs(tmp_path, members=(0, 1))
    late = tmp_path / "late" / "gep02.t00z.pgrb2s.0p25.f003"
    late.parent.mkdir()
    with open(late, "wb") as fh:
        _message(fh, member=2, start=0, end=3, value=1.0, date=20200601)
    with pytest.raises(InputError, match=r"the tp files are of 2 different forecast runs "
                                         r"\(2020-05-31T00:00: gec00.*; 2020-06-01T00:00: "
                                         r"gep02\.t00z"):
        read_rainfall([*files, late])
    shifted = tmp_path / "late" / "gep02.t00z.pgrb2s.0p25.f006"
    with open(shifted, "wb") as fh:
        _message(fh, member=2, start=0, end=6, value=1.0, first_lon=270.0)
    with pytest.raises(InputError, match=r"different grids .*gep02\.t00z\.pgrb2s\.0p25\.f006"):
        read_rainfall([*files, shifted])


def test_cell_budget_counts_every_file_before_decoding(tmp_path):
    files = _gefs(tmp_path)  # 3 members × 6 steps × 10 × 13 = 2,340 cells
    with pytest.raises(InputError, match=r"declares 18 × 10 × 13 \(tp messages × Nj × Ni\) = "
                                         r"2,340 cells .* budget of 2,339 cells"):
        read_rainfall(files, max_cells=2339)
    assert read_rainfall(files, max_cells=2340).rain_mm.shape == (3, 6, NJ, NI)


# --------------------------------------------------------------------------- ECMWF ENS

#: Rain per 6-h step (mm) of members 0 (control), 1, 2 over hours 0-6, 6-12, 12-18.
ECMWF_STEP_MM = {0: [4.0, 0.0, 10.0], 1: [0.5, 7.5, 2.0], 2: [12.0, 3.0, 0.0]}


def _ecmwf_total_m(member: int, hour: int) -> float:
    """tp at ``hour``: metres since step 0 (by hand for member 1 at 12 h: 0.5 + 7.5 = 8 mm)."""
    return sum(ECMWF_STEP_MM[member][: hour // 6]) / 1000.0


def _ecmwf_messages(fh, hours, order=(2, 0, 1)) -> None:
    """Control and perturbed members, as ECMWF open data does: steps 0 (0-0, no rain), 6, 12,
    18; members in the given order within each step."""
    for hour in hours:
        for member in order:
            value = np.full((NJ, NI), _ecmwf_total_m(member, hour))
            value[0, 0] += member * 1e-3 * (hour > 0)  # one cell marks whose field it is
            _message(fh, member=member, start=0, end=hour, value=value, centre="ecmf",
                     ecmwf=True, first_lon=-90.5, total=51)


def _check_ecmwf(fc) -> None:
    assert fc.members.tolist() == [0, 1, 2]
    for member, steps in ECMWF_STEP_MM.items():
        np.testing.assert_allclose(fc.rain_mm[member, :, 5, 5], steps, atol=1e-3)
        # The marked cell: member m gets m mm more in the first step only (0-6 h).
        np.testing.assert_allclose(fc.rain_mm[member, :, 0, 0] - fc.rain_mm[member, :, 5, 5],
                                   [member, 0, 0], atol=1e-3)
    assert [str(t)[11:16] for t in fc.step_end] == ["06:00", "12:00", "18:00"]
    assert str(fc.step_start[0]) == "2020-05-31T00:00:00"
    assert fc.metadata["units"] == "m"


def test_ecmwf_ens_one_file_control_and_perturbed_in_any_order(tmp_path):
    path = tmp_path / "ecmwf_ens.grib2"
    with open(path, "wb") as fh:
        _ecmwf_messages(fh, [12, 0, 18, 6], order=(1, 2, 0))
    _check_ecmwf(read_rainfall(path))


def test_ecmwf_open_data_one_file_per_step(tmp_path):
    for hour in (0, 6, 12, 18):
        with open(tmp_path / f"20200531000000-{hour}h-enfo-ef.grib2", "wb") as fh:
            _ecmwf_messages(fh, [hour])
    _check_ecmwf(read_rainfall(str(tmp_path / "*-enfo-ef.grib2")))
    with pytest.raises(InputError, match=r"member 1 lacks the step ending 2020-05-31T12:00 "
                                         r"\(\+12 h\)"):
        with open(tmp_path / "20200531000000-12h-enfo-ef.grib2", "wb") as fh:
            for member in (0, 2):
                _message(fh, member=member, start=0, end=12, value=0.004, centre="ecmf",
                         ecmwf=True, first_lon=-90.5, total=51)
        read_rainfall(str(tmp_path / "*-enfo-ef.grib2"))


def test_ecmwf_step_zero_holding_rain_is_refused(tmp_path):
    path = tmp_path / "bad_step0.grib2"
    with open(path, "wb") as fh:
        _ecmwf_messages(fh, [6, 12])
        _message(fh, member=1, start=0, end=0, value=0.002, centre="ecmf", ecmwf=True,
                 first_lon=-90.5, total=51)
    with pytest.raises(InputError, match=r"bad_step0\.grib2: tp is accumulated from the "
                                         r"forecast start, yet its step 0 \(hours 0-0, member 1,"
                                         r" message 7 of bad_step0\.grib2\) holds rain"):
        read_rainfall(path)


def test_a_grid_stored_column_by_column_is_refused(tmp_path):
    """jPointsAreConsecutive = 1: read row by row, its values would be transposed."""
    import eccodes

    source = tmp_path / "rows.grib2"
    with open(source, "wb") as fh:
        _message(fh, member=0, start=0, end=3, value=1.0)
    columns = tmp_path / "columns.grib2"
    with open(source, "rb") as fin, open(columns, "wb") as fout:
        gid = eccodes.codes_grib_new_from_file(fin)
        try:
            eccodes.codes_set(gid, "jPointsAreConsecutive", 1)
            eccodes.codes_write(gid, fout)
        finally:
            eccodes.codes_release(gid)
    with pytest.raises(InputError, match="column by column"):
        read_rainfall(columns)
