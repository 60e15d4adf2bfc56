"""Synthetic moving tropical-storm rainfall for demos, drills and tests.

The rain rate around the storm centre is a Gaussian core plus a broad Gaussian shield,
modulated by spiral rain bands, scaled by an envelope that grows and decays over the storm's
life, and textured by smooth random cells. Everything it makes is flagged synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from floodwarn.errors import InputError
from floodwarn.rainfall.forecast import RainfallForecast

_KM_PER_DEG = 111.32


@dataclass(frozen=True)
class StormParameters:
    """A storm: its track, size, intensity and the grid it rains on.

    ``track``: (hours after ``start``, lon, lat) points, linearly interpolated (held at the
    ends). ``core_radius_km`` / ``shield_radius_km``: e-folding radii of the intense core and
    the broad rain shield; ``core_rate_mm_h`` / ``shield_rate_mm_h`` their peak rates.
    ``ramp_hours``: rise and decay time of the envelope. ``background_mm_h``: rain everywhere
    (monsoon-gyre moisture). ``bbox``: (west, south, east, north) of the grid, degrees.
    """

    name: str
    start: str
    hours: int
    track: tuple[tuple[float, float, float], ...]
    core_radius_km: float = 60.0
    core_rate_mm_h: float = 12.0
    shield_radius_km: float = 250.0
    shield_rate_mm_h: float = 3.0
    background_mm_h: float = 0.3
    ramp_hours: float = 12.0
    band_amplitude: float = 0.35
    texture_amplitude: float = 0.3
    step_hours: int = 1
    resolution_deg: float = 0.05
    bbox: tuple[float, float, float, float] = (-90.5, 12.8, -87.2, 15.0)
    seed: int = 2020
    description: str = field(default="")

    def validate(self) -> None:
        if self.hours <= 0 or self.step_hours <= 0 or self.hours % self.step_hours:
            raise InputError("storm: hours must be a positive multiple of step_hours.")
        if len(self.track) < 1:
            raise InputError("storm: the track needs at least one point.")
        times = [p[0] for p in self.track]
        if times != sorted(times):
            raise InputError("storm: track points must be in time order.")
        for value, what in ((self.core_radius_km, "core_radius_km"),
                            (self.shield_radius_km, "shield_radius_km"),
                            (self.resolution_deg, "resolution_deg")):
            if value <= 0:
                raise InputError(f"storm: {what} must be > 0.")
        for value, what in ((self.core_rate_mm_h, "core_rate_mm_h"),
                            (self.shield_rate_mm_h, "shield_rate_mm_h"),
                            (self.background_mm_h, "background_mm_h")):
            if value < 0:
                raise InputError(f"storm: {what} must be ≥ 0.")
        w, s, e, n = self.bbox
        if not (w < e and s < n):
            raise InputError(f"storm: bbox {self.bbox} must be (west, south, east, north).")


#: Tropical Storm Amanda, 30 May – 2 June 2020, at its scale: formed off the Guatemala –
#: El Salvador coast, landfall near the border early on 31 May, inland over Guatemala, the
#: remnant gyre raining for two more days. Several hundred mm fell in 72 h over El Salvador
#: (NHC Tropical Cyclone Report EP022020, Latto & Berg 2020). Track and rates are an
#: approximation of that scale, not a reanalysis.
AMANDA_2020 = StormParameters(
    name="amanda-2020",
    start="2020-05-30T12:00",
    hours=72,
    track=((0.0, -89.6, 12.3), (18.0, -90.0, 13.6), (30.0, -90.2, 14.4), (48.0, -89.9, 14.9),
           (72.0, -89.4, 15.3)),
    core_radius_km=90.0,
    core_rate_mm_h=11.0,
    shield_radius_km=280.0,
    shield_rate_mm_h=3.5,
    background_mm_h=0.6,
    ramp_hours=10.0,
    texture_amplitude=0.7,  # convective cells: hourly bursts of 40-70 mm/h, as gauges saw
    description="Tropical Storm Amanda (May 2020) scale preset — SYNTHETIC",
)

PRESETS: dict[str, StormParameters] = {AMANDA_2020.name: AMANDA_2020}


def _smooth_texture(shape: tuple[int, int], n_steps: int, rng: np.random.Generator,
                    amplitude: float) -> np.ndarray:
    """Multiplicative log-normal texture of smooth rain cells, drifting slowly in time."""
    from scipy.ndimage import gaussian_filter

    base = gaussian_filter(rng.standard_normal((n_steps // 6 + 2, *shape)), sigma=(0, 4, 4))
    base /= base.std() + 1e-12
    t = np.arange(n_steps) / 6.0
    i0 = np.floor(t).astype(int)
    frac = (t - i0)[:, None, None]
    field = base[i0] * (1 - frac) + base[i0 + 1] * frac
    return np.exp(amplitude * field - 0.5 * amplitude**2)


#: Mean official track error of NHC forecasts at 24 h, km (about 40 n mi; Cangialosi 2021).
TRACK_ERROR_24H_KM = 74.0
#: Spread of a member's rain rates about the control's (log-normal σ of its rate factor).
INTENSITY_SPREAD = 0.25


def storm_ensemble(params: StormParameters, n_members: int, *, seed: int = 0
                   ) -> RainfallForecast:
    """A SYNTHETIC ensemble of ``params``: member 0 is the storm itself (the control), each
    other member a perturbed copy — its track drifting off the control's at a random constant
    rate whose spread makes the mean track error :data:`TRACK_ERROR_24H_KM` after 24 h (and
    grow linearly with lead time, as official errors do), its rates scaled by a log-normal
    factor (σ :data:`INTENSITY_SPREAD`). The rain cells' texture is the control's: drawn anew
    per member, its heavy tail made hourly rates of 260 mm/h somewhere in a 51-member set,
    which no storm of the region has approached. Members are reproducible from ``seed``; they
    exercise ensemble runs and the benchmarks, not a forecast's skill.

    References
    ----------
    Cangialosi, J.P. (2021) National Hurricane Center Forecast Verification Report, 2020
    Hurricane Season (official track errors by lead time).
    Leutbecher, M. & Palmer, T.N. (2008) Ensemble forecasting. J. Comput. Phys. 227, 3515-3539
    (ensembles as perturbed initial states and model tendencies).
    """
    if n_members < 1:
        raise InputError(f"storm ensemble: {n_members} members; at least 1 is needed.")
    rng = np.random.default_rng(seed)
    # Per-axis σ of the drift rate (km/h) so that the mean 2-D error at 24 h is the NHC figure:
    # the mean of a Rayleigh variable is σ √(π/2).
    sigma_km_h = TRACK_ERROR_24H_KM / np.sqrt(np.pi / 2.0) / 24.0
    track = np.array(params.track, np.float64)
    members = [storm_forecast(params)]
    for _ in range(1, n_members):
        drift_x, drift_y = rng.normal(0.0, sigma_km_h, 2)
        factor = float(np.exp(rng.normal(0.0, INTENSITY_SPREAD) - INTENSITY_SPREAD**2 / 2))
        lats = track[:, 2] + drift_y * track[:, 0] / _KM_PER_DEG
        lons = track[:, 1] + drift_x * track[:, 0] / (_KM_PER_DEG * np.cos(np.radians(lats)))
        perturbed = replace(
            params, track=tuple(zip(track[:, 0], lons, lats, strict=True)),
            core_rate_mm_h=params.core_rate_mm_h * factor,
            shield_rate_mm_h=params.shield_rate_mm_h * factor)
        members.append(storm_forecast(perturbed))
    first = members[0]
    return replace(first, rain_mm=np.concatenate([m.rain_mm for m in members]),
                   members=np.arange(n_members),
                   metadata={**first.metadata, "ensemble_members": n_members,
                             "ensemble_seed": seed,
                             "description": f"{params.description} — ensemble of {n_members} "
                                            "perturbed members (SYNTHETIC)"})


def storm_forecast(params: StormParameters) -> RainfallForecast:
    """Rain per step (mm) of a moving storm on a lat/lon grid, as a canonical forecast.

    References
    ----------
    Lonfat, M., Marks, F.D. & Chen, S.S. (2004) Precipitation distribution in tropical cyclones
    using the TRMM microwave imager: a global perspective. Monthly Weather Review 132,
    1645-1660 (core rates of ~10-15 mm/h within ~100 km, decaying outwards, used for scale).
    """
    params.validate()
    w, s, e, n = params.bbox
    res = params.resolution_deg
    lon = np.arange(w + res / 2, e, res)
    lat = np.arange(n - res / 2, s, -res)
    lon2, lat2 = np.meshgrid(lon, lat)
    n_steps = params.hours // params.step_hours
    start = np.datetime64(params.start, "s")
    step = np.timedelta64(params.step_hours * 3600, "s")
    step_end = start + step * np.arange(1, n_steps + 1)
    step_start = step_end - step
    track = np.array(params.track, np.float64)
    rng = np.random.default_rng(params.seed)
    texture = _smooth_texture(lon2.shape, n_steps, rng, params.texture_amplitude)
    rain = np.empty((1, n_steps, *lon2.shape), np.float32)
    for k in range(n_steps):
        hour = (k + 0.5) * params.step_hours
        clon = np.interp(hour, track[:, 0], track[:, 1])
        clat = np.interp(hour, track[:, 0], track[:, 2])
        dx = (lon2 - clon) * _KM_PER_DEG * np.cos(np.radians(clat))
        dy = (lat2 - clat) * _KM_PER_DEG
        r = np.hypot(dx, dy)
        theta = np.arctan2(dy, dx)
        # Two logarithmic spiral bands, turning counter-clockwise (northern hemisphere).
        bands = 1.0 + params.band_amplitude * np.cos(2 * theta - 2.5 * np.log1p(r / 30.0))
        rate = (params.core_rate_mm_h * np.exp(-((r / params.core_radius_km) ** 2))
                + params.shield_rate_mm_h * np.exp(-((r / params.shield_radius_km) ** 2))
                * bands)
        envelope = min(1.0, (hour + 1.0) / params.ramp_hours,
                       (params.hours - hour + 1.0) / params.ramp_hours)
        rain[0, k] = (envelope * rate * texture[k] + params.background_mm_h) * params.step_hours
    return RainfallForecast(
        rain_mm=rain,
        step_start=step_start,
        step_end=step_end,
        x=lon,
        y=lat,
        crs="EPSG:4326",
        members=np.array([0]),
        metadata={
            "source": f"storm generator: {params.name}",
            "variable": "precipitation",
            "units": "mm",
            "accumulation": "step",
            "values_filled": 0,
            "synthetic": True,
            "storm": params.name,
            "description": params.description,
            "reference_time": str(start),
        },
    )
