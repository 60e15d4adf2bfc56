"""Files a forecast run writes: hydrographs (NetCDF), reach table (GeoPackage), run.json."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from isal import isal_zlib

from floodwarn import __version__
from floodwarn.io.raster import write_cog, write_web_mercator_cog
from floodwarn.terrain.grid import Grid
from floodwarn.terrain.model import TerrainModel

HYDROGRAPHS_FILE = "hydrographs.nc"
REACHES_FILE = "reaches.gpkg"
RUN_FILE = "run.json"
DEPTH_FILE = "depth.tif"
SETTLEMENTS_FILE = "settlements.gpkg"
CENTRES_FILE = "centres.gpkg"
EVACUATION_FILE = "evacuation.csv"
SUMMARY_FILE = "summary.json"
FIRST_FLOODING_FILE = "first_flooding_hours.tif"
#: Web Mercator copies of the depth and first-flooding rasters for the web map's tiles
#: (GoogleMapsCompatible tiling: a map tile is a block of the file; see
#: floodwarn.io.raster.write_web_mercator_cog). Runs made before them have only the UTM files.
DEPTH_WEB_MERCATOR_FILE = "depth_3857.tif"
FIRST_FLOODING_WEB_MERCATOR_FILE = "first_flooding_hours_3857.tif"
FLOOD_PROBABILITY_FILE = "flood_probability.tif"
#: A scenario folder's index (floodwarn scenarios run): request, return periods, weights,
#: totals, provenance; its combined tables (CSV, one row per item); and where ``floodwarn
#: plan shelters`` writes by default inside it, the chosen upgrades and the plan's header.
SCENARIOS_FILE = "scenarios.json"
EXPOSURE_FILES = {"settlements": "exposure_settlements.csv",
                  "municipalities": "exposure_municipalities.csv",
                  "departments": "exposure_departments.csv",
                  "centres": "centres_by_return_period.csv",
                  "reaches": "reaches_ranked.csv"}
PLAN_FOLDER = "plan"
UPGRADES_FILE = "upgrades.csv"
UPGRADE_PLAN_FILE = "upgrade_plan.json"


def write_flood_rasters(out: Path, depth_m: np.ndarray, first_flooding_h: np.ndarray,
                        grid: Grid, tags: dict[str, str], *,
                        probability: np.ndarray | None = None, members: int = 1,
                        time_origin: str = "forecast_start_utc",
                        web_mercator: bool = True) -> None:
    """The run's peak depth and first-flooding hours as COGs on the terrain's ``grid``
    (:data:`DEPTH_FILE`, :data:`FIRST_FLOODING_FILE`), and their Web Mercator copies for the
    map's tiles (:data:`DEPTH_WEB_MERCATOR_FILE`, :data:`FIRST_FLOODING_WEB_MERCATOR_FILE`);
    with ``probability``, the share of the ``members`` that flood each land cell
    (:data:`FLOOD_PROBABILITY_FILE`, NaN on channels, lakes and outside the terrain).
    First-flooding hours count from ``time_origin`` (a tag's name, or what the hours start at).
    ``web_mercator=False`` leaves out the map tiles' copies (outputs no tile server reads).

    Depth overviews average (the mean depth of the area, dry cells counting as 0); the
    first-flooding overviews take the nearest cell's hour, never a mean of two cells' hours.
    """
    from concurrent.futures import ThreadPoolExecutor

    def depth() -> None:
        write_cog(out / DEPTH_FILE, depth_m, grid, nodata=np.nan, tags={**tags, "units": "m"},
                  description="peak flood depth on land, m (overbank stage − HAND); river "
                  "channels and lakes are nodata: their water is not a flood")
        if web_mercator:
            write_web_mercator_cog(out / DEPTH_FILE, out / DEPTH_WEB_MERCATOR_FILE)

    def first_flooding() -> None:
        write_cog(out / FIRST_FLOODING_FILE, first_flooding_h, grid, nodata=np.nan,
                  kind="arrival", tags={**tags, "units": f"hours after {time_origin}"},
                  description=f"hours from {time_origin} until the cell first floods")
        if web_mercator:
            write_web_mercator_cog(out / FIRST_FLOODING_FILE,
                                   out / FIRST_FLOODING_WEB_MERCATOR_FILE, kind="arrival")

    def flood_probability() -> None:
        if probability is not None:
            write_cog(out / FLOOD_PROBABILITY_FILE, probability.astype(np.float32), grid,
                      nodata=np.nan, tags={**tags, "units": "1", "members": str(members)},
                      description=f"share of the {members} ensemble members whose flood "
                      "reaches the wet depth (models/levels.yaml) on this land cell")

    # GDAL compresses and warps without the interpreter lock: the files on two cores.
    with ThreadPoolExecutor(2) as pool:
        for written in [pool.submit(depth), pool.submit(first_flooding),
                        pool.submit(flood_probability)]:
            written.result()


#: Reaches per chunk of hydrographs.nc.
HYDROGRAPH_CHUNK_REACHES = 4096
#: Mantissa bits kept of discharges written (float32 has 23).
DISCHARGE_MANTISSA_BITS = 10


def bit_round(values: np.ndarray, keep_bits: int) -> np.ndarray:
    """float32 ``values`` rounded to ``keep_bits`` mantissa bits (round half up in the bit
    pattern, which for finite values rounds the magnitude to nearest): relative error
    ≤ 2^-(keep_bits + 1). Klöwer et al. (2021)."""
    if not 0 < keep_bits < 23:
        raise ValueError(f"keep_bits must be 1…22, got {keep_bits}")
    bits = np.ascontiguousarray(values, np.float32).view(np.uint32)
    drop = 23 - keep_bits
    rounded = (bits + np.uint32(1 << (drop - 1))) & np.uint32((0xFFFFFFFF << drop) & 0xFFFFFFFF)
    finite = np.isfinite(values)
    return np.where(finite, rounded.view(np.float32), np.asarray(values, np.float32))


def write_hydrographs(path: Path, *, reach_id: np.ndarray, step_start: np.ndarray,
                      step_end: np.ndarray, discharge_m3s: Sequence[np.ndarray] | np.ndarray,
                      members: np.ndarray,
                      attrs: dict[str, Any],
                      water_bodies: Sequence[str] = (),
                      water_body_series: dict[str, Sequence[np.ndarray] | np.ndarray] | None = None,
                      bands: Mapping[str, np.ndarray] | None = None,
                      ) -> Path:
    """``discharge`` (member, reach, time) in m³/s at step ends, CF-1.10; with water bodies,
    their ``water_body_level_m``, ``water_body_inflow_m3s`` and ``water_body_outflow_m3s``
    (member, water_body, time) at step ends; ``bands`` (name → (reach, time)), e.g. the
    ensemble's ``discharge_p10`` / ``discharge_p50`` / ``discharge_p90`` across members.
    (:class:`HydrographsFile` writes the same file as a run goes.)

    Members are written one at a time, in chunks of :data:`HYDROGRAPH_CHUNK_REACHES` reaches
    (a reach's series across members reads a few small chunks, not every member whole).
    Discharge is bit-rounded to :data:`DISCHARGE_MANTISSA_BITS` bits before compression
    (relative error ≤ 2⁻¹¹ ≈ 0.05 %, far inside any discharge's uncertainty): the random low
    bits of float32 do not compress, and a 51-member file is half the size, written in half
    the time. A member's chunks are encoded by :func:`encode_discharge_chunks` — where the
    member ran, for an ensemble on Dask — and stored as they are (HDF5 direct chunk writes):
    HDF5's own shuffle and deflate filters read them back.

    References
    ----------
    Klöwer, M., Razinger, M., Dominguez, J.J., Düben, P.D. & Palmer, T.N. (2021) Compressing
    atmospheric data into its real information content. Nature Computational Science 1,
    713-724 (bit rounding before lossless compression).
    """
    hydrographs = HydrographsFile(path, reach_id=reach_id, step_start=step_start,
                                  step_end=step_end, members=members, attrs=attrs,
                                  water_bodies=water_bodies, band_names=tuple(bands or ()))
    for m, values in enumerate(discharge_m3s):
        hydrographs.write_member(m, encode_discharge_chunks(values))
    return hydrographs.finish(water_body_series=water_body_series, bands=bands)


def encode_discharge_chunks(discharge_m3s: np.ndarray,
                            chunk_reaches: int = HYDROGRAPH_CHUNK_REACHES) -> list[bytes]:
    """One member's (reach, time) discharge as the stored chunks of ``hydrographs.nc``:
    bit-rounded (:data:`DISCHARGE_MANTISSA_BITS`), cut into blocks of ``chunk_reaches``
    reaches (all of them when fewer; the last block padded with zeros to a whole chunk, as
    HDF5 stores edge chunks), each
    byte-shuffled and deflated (level 1) in the formats of HDF5's shuffle and deflate filters.
    Deflated by ISA-L (a zlib stream any inflate reads, made 4× faster than zlib's: 0.02 s a
    member on the demo domain), without the interpreter lock.

    References
    ----------
    The HDF Group (2023) HDF5 User's Guide, §5.4.2 (chunked storage, edge chunks) and the
    shuffle and deflate filters (H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE: zlib's format,
    RFC 1950). Intel ISA-L igzip (the isal package).
    """
    values = bit_round(discharge_m3s, DISCHARGE_MANTISSA_BITS)
    n_reach, n_t = values.shape
    chunk_reaches = min(n_reach, chunk_reaches)  # as HydrographsFile chunks a small network
    chunks = []
    for r0 in range(0, n_reach, chunk_reaches):
        block = np.zeros((chunk_reaches, n_t), np.float32)
        part = values[r0:r0 + chunk_reaches]
        block[:len(part)] = part
        shuffled = block.view(np.uint8).reshape(-1, 4).T.tobytes()
        chunks.append(isal_zlib.compress(shuffled, 1))
    return chunks


class HydrographsFile:
    """``hydrographs.nc`` written as a run goes (:func:`write_hydrographs` says what it holds):
    its variables made first, each member's discharge stored when it arrives
    (:meth:`write_member`, chunks from :func:`encode_discharge_chunks`), the water bodies'
    series and the bands at the end (:meth:`finish`), and only then renamed into place;
    :meth:`abort` leaves nothing behind. One thread at a time."""

    def __init__(self, path: Path, *, reach_id: np.ndarray, step_start: np.ndarray,
                 step_end: np.ndarray, members: np.ndarray, attrs: dict[str, Any],
                 water_bodies: Sequence[str] = (), band_names: Sequence[str] = ()) -> None:
        import h5py
        import netCDF4

        self.path = path
        self.tmp = path.with_suffix(".nc.tmp")
        epoch = np.datetime64("1970-01-01T00:00:00", "s")

        def hours(times: np.ndarray) -> np.ndarray:
            return (np.asarray(times, "datetime64[s]") - epoch).astype(np.float64) / 3600.0

        n_reach, n_t = len(reach_id), len(step_end)
        self.n_members = len(members)
        self.chunk = (1, min(n_reach, HYDROGRAPH_CHUNK_REACHES), n_t)
        self.band_names = tuple(band_names)
        self.water_bodies = tuple(water_bodies)
        try:
            self._create(netCDF4, reach_id, hours(step_start), hours(step_end), members, attrs)
            self.h5 = h5py.File(self.tmp, "r+")
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        self.discharge = self.h5["discharge"]

    def _create(self, netCDF4: Any, reach_id: np.ndarray, start_h: np.ndarray,
                end_h: np.ndarray, members: np.ndarray, attrs: dict[str, Any]) -> None:
        n_reach, n_t = len(reach_id), len(end_h)
        with netCDF4.Dataset(self.tmp, "w", format="NETCDF4") as nc:
            nc.setncatts({"Conventions": "CF-1.10", "history": f"floodwarn {__version__}",
                          **{k: (json.dumps(v) if isinstance(v, dict | list | bool) or v is None
                                 else v) for k, v in attrs.items()}})
            nc.createDimension("member", len(members))
            nc.createDimension("reach", n_reach)
            nc.createDimension("time", n_t)
            nc.createDimension("nv", 2)
            member = nc.createVariable("member", np.asarray(members).dtype, ("member",))
            member[:] = np.asarray(members)
            reach = nc.createVariable("reach", "i4", ("reach",))
            reach[:] = np.asarray(reach_id, np.int32)
            reach.long_name = "reach id (reaches.gpkg of the terrain model)"
            time = nc.createVariable("time", "f8", ("time",))
            time.setncatts({"units": "hours since 1970-01-01 00:00:00", "calendar": "standard",
                            "standard_name": "time", "bounds": "time_bnds"})
            time[:] = end_h
            bounds = nc.createVariable("time_bnds", "f8", ("time", "nv"))
            bounds[:] = np.stack([start_h, end_h], 1)
            # Exactly the filters encode_discharge_chunks applies: shuffle, then deflate.
            discharge = nc.createVariable("discharge", "f4", ("member", "reach", "time"),
                                          zlib=True, complevel=1, shuffle=True,
                                          chunksizes=self.chunk)
            discharge.setncatts({"units": "m3 s-1", "long_name": "discharge at the reach "
                                 "outlet at the end of each time step",
                                 "floodwarn_mantissa_bits": DISCHARGE_MANTISSA_BITS})
            for name in self.band_names:
                band = nc.createVariable(name, "f4", ("reach", "time"), zlib=True, complevel=1,
                                         shuffle=True, chunksizes=self.chunk[1:])
                band.setncatts({"units": "m3 s-1", "long_name": f"{name.rsplit('_p', 1)[-1]} "
                                "% quantile of the members' discharge at the end of each step",
                                "floodwarn_mantissa_bits": DISCHARGE_MANTISSA_BITS})
            if self.water_bodies:
                nc.createDimension("water_body", len(self.water_bodies))
                names = nc.createVariable("water_body", str, ("water_body",))
                names[:] = np.array(list(self.water_bodies), dtype=object)
                names.long_name = "water body id (models/reservoirs.yaml)"
                for key, (units, long_name) in _WATER_BODY_SERIES.items():
                    series = nc.createVariable(f"water_body_{key}", "f8",
                                               ("member", "water_body", "time"))
                    series.setncatts({"units": units, "long_name": long_name})

    def write_member(self, index: int, chunks: Sequence[bytes]) -> None:
        """Member ``index`` (its position in ``members``): its chunks, in reach order."""
        step = self.chunk[1]
        for k, chunk in enumerate(chunks):
            self.discharge.id.write_direct_chunk((index, k * step, 0), chunk, 0)

    def finish(self, *, water_body_series: dict[str, Sequence[np.ndarray] | np.ndarray]
               | None = None, bands: Mapping[str, np.ndarray] | None = None) -> Path:
        import netCDF4

        try:
            self.h5.close()
            with netCDF4.Dataset(self.tmp, "a") as nc:
                for name, values in (bands or {}).items():
                    nc[name][:] = bit_round(values, DISCHARGE_MANTISSA_BITS)
                if self.water_bodies:
                    for key, series in (water_body_series or {}).items():
                        for m, values in enumerate(series):
                            nc[f"water_body_{key}"][m] = np.asarray(values, np.float64)
        except BaseException:
            self.abort()
            raise
        self.tmp.replace(self.path)
        return self.path

    def abort(self) -> None:
        if self.h5.id.valid:
            self.h5.close()
        self.tmp.unlink(missing_ok=True)


#: The water-body series of hydrographs.nc: units and description.
_WATER_BODY_SERIES = {
    "level_m": ("m", "water level above sea level at the end of each step"),
    "inflow_m3s": ("m3 s-1", "inflow into the water body at the end of each step"),
    "outflow_m3s": ("m3 s-1", "outflow of the water body at the end of each step"),
}


def write_reach_results(path: Path, terrain: TerrainModel, columns: dict[str, np.ndarray],
                        metadata: dict[str, Any], *, lines: Any = None) -> Path:
    """The terrain's reach lines with the forecast's per-reach columns, as a GeoPackage;
    ``lines`` may pass the reach lines already made (:func:`reaches_geodataframe`) for
    several such files."""
    from floodwarn.io.terrain_files import reaches_geodataframe

    gdf = reaches_geodataframe(terrain) if lines is None else lines.copy()
    for name, values in columns.items():
        gdf[name] = values
    tmp = path.with_suffix(".partial.gpkg")
    tmp.unlink(missing_ok=True)
    gdf.to_file(tmp, driver="GPKG", layer="reaches",
                metadata={k: str(v) for k, v in metadata.items()})
    tmp.replace(path)
    return path


def write_run_json(path: Path, record: dict[str, Any]) -> Path:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=_json_default, ensure_ascii=False))
    tmp.replace(path)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def write_risk_outputs(out: Path, risk: Any, metadata: dict[str, Any]) -> None:
    """``settlements.gpkg``, ``centres.gpkg`` (lon/lat), ``evacuation.csv`` and
    ``summary.json`` of a risk assessment (:class:`floodwarn.risk.assessment.RiskAssessment`)."""
    for frame, name, layer in ((risk.settlements, SETTLEMENTS_FILE, "settlements"),
                               (risk.centres, CENTRES_FILE, "centres")):
        tmp = out / (name + ".partial.gpkg")
        tmp.unlink(missing_ok=True)
        frame.to_crs("EPSG:4326").to_file(tmp, driver="GPKG", layer=layer,
                                          metadata={k: str(v) for k, v in metadata.items()})
        tmp.replace(out / name)
    tmp_csv = out / (EVACUATION_FILE + ".tmp")
    risk.evacuation.to_csv(tmp_csv, index=False)
    tmp_csv.replace(out / EVACUATION_FILE)
    write_run_json(out / SUMMARY_FILE, {**metadata, **risk.summary})
