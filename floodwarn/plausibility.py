"""A forecast's plausibility report: the figures a hydrologist checks before believing a run.

Peaks against the Francou-Rodier envelope of the world's largest floods, rating curves that
ran out, the deepest settlements and why they are that deep, the mass balance and the water
bodies; each figure beyond a bound of ``models/plausibility.yaml`` becomes a warning, in
Spanish then English, that the run record carries and ``floodwarn forecast run`` prints.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from floodwarn.kernels.routing import REGIME_PASS_THROUGH
from floodwarn.parameters import PlausibilityBounds

#: Francou-Rodier reference discharge (m³/s) and area (km²).
FR_Q0_M3S = 1e6
FR_A0_KM2 = 1e8


def francou_rodier_k(peak_m3s: np.ndarray, area_km2: np.ndarray) -> np.ndarray:
    """Francou-Rodier K of peaks: Q/Q0 = (A/A0)^(1 − K/10), so
    K = 10·(1 − log(Q/Q0)/log(A/A0)); NaN where the peak or the area is not positive.

    References
    ----------
    Francou, J. & Rodier, J.A. (1967) Essai de classification des crues maximales observées
    dans le monde. Cahiers ORSTOM, Hydrologie 4(3), 19-46.
    Rodier, J.A. & Roche, M. (1984) World catalogue of maximum observed floods. IAHS Publ. 143.
    """
    q = np.asarray(peak_m3s, np.float64)
    a = np.asarray(area_km2, np.float64)
    ok = (q > 0) & (a > 0) & (a < FR_A0_KM2)
    out = np.full(np.broadcast(q, a).shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = 10.0 * (1.0 - np.log(q / FR_Q0_M3S) / np.log(a / FR_A0_KM2))
    out[ok] = k[ok]
    return out


def _warning(code: str, es: str, en: str, **figures: Any) -> dict[str, Any]:
    return {"code": code, "es": es, "en": en, **figures}


def plausibility_report(reaches: dict[str, np.ndarray], upstream_area_km2: np.ndarray,
                        downstream: np.ndarray, settlements: pd.DataFrame | None,
                        bounds: PlausibilityBounds, *, record: dict[str, Any],
                        land_depth: tuple[np.ndarray, np.ndarray, float] | None = None
                        ) -> dict[str, Any]:
    """The report of one run (module docstring). ``reaches``: the run's per-reach columns
    (``peak_m3s``, ``return_period_class``, ``peak_stage_m``, ``rating_curve_extended``,
    ``stage_beyond_rating_curve``, ``francou_rodier_k``); ``downstream`` (n,) 0-based next
    reach, −1 at outlets; ``settlements``: the risk table
    (``max_depth_m``, ``flooding_reach_id``…) or None; ``record``: the run record so far
    (mass balance, water bodies); ``land_depth``: the flood depth raster, the catchment
    raster and the cell area (km²), to check the depth on open land."""
    area = np.asarray(upstream_area_km2, np.float64)
    peak = np.asarray(reaches["peak_m3s"], np.float64)
    k = np.asarray(reaches["francou_rodier_k"], np.float64)
    extended = np.asarray(reaches["rating_curve_extended"], bool)
    beyond = np.asarray(reaches["stage_beyond_rating_curve"], bool)
    large = area >= bounds.large_river_km2
    warnings: list[dict[str, Any]] = []

    curves = {
        "reaches_on_extended_curve": int(extended.sum()),
        "reaches_beyond_curve": int(beyond.sum()),
        "large_rivers": int(large.sum()),
        "large_rivers_on_extended_curve": int((extended & large).sum()),
        "large_rivers_beyond_curve": int((beyond & large).sum()),
    }
    if curves["large_rivers_on_extended_curve"] or curves["large_rivers_beyond_curve"]:
        n = curves["large_rivers_on_extended_curve"]
        warnings.append(_warning(
            "large_river_rating_curve",
            f"{n} tramos de ríos de más de {bounds.large_river_km2:,.0f} km² superan la curva "
            "de gasto del MDE: su nivel es extrapolado.",
            f"{n} reaches of rivers over {bounds.large_river_km2:,.0f} km² exceed the DEM's "
            "rating curve: their stage is extrapolated.", reaches=n))

    # Inside a lake the discharge is the lakes' unrouted inflow, not a river's flood.
    river = np.asarray(reaches.get("routing_regime", np.ones(area.size)), np.int64) != \
        REGIME_PASS_THROUGH
    judged = (area >= bounds.francou_rodier_min_area_km2) & np.isfinite(k) & river
    fr: dict[str, Any] = {"reaches_judged": int(judged.sum()),
                          "judged_min_area_km2": bounds.francou_rodier_min_area_km2}
    if judged.any():
        worst = int(np.flatnonzero(judged)[np.argmax(k[judged])])
        fr.update({
            "max_k": round(float(k[worst]), 2),
            "max_k_reach_id": worst + 1,
            "max_k_area_km2": round(float(area[worst]), 1),
            "max_k_peak_m3s": round(float(peak[worst]), 1),
            "above_regional_k": int((k[judged] > bounds.regional_k).sum()),
            "above_world_k": int((k[judged] > bounds.world_k).sum()),
            "largest_rivers": [
                {"reach_id": int(r) + 1, "area_km2": round(float(area[r]), 1),
                 "peak_m3s": round(float(peak[r]), 1), "k": round(float(k[r]), 2)}
                for r in _largest_outlets(area, downstream)],
        })
        if fr["above_world_k"]:
            warnings.append(_warning(
                "francou_rodier_world",
                f"{fr['above_world_k']} picos superan K = {bounds.world_k:g} de Francou-Rodier, "
                f"entre las mayores crecidas del mundo (máx. K = {fr['max_k']:.2f}, tramo "
                f"{worst + 1}, {area[worst]:,.0f} km², {peak[worst]:,.0f} m³/s).",
                f"{fr['above_world_k']} peaks exceed Francou-Rodier K = {bounds.world_k:g}, "
                f"among the world's largest floods (max K = {fr['max_k']:.2f}, reach "
                f"{worst + 1}, {area[worst]:,.0f} km², {peak[worst]:,.0f} m³/s).",
                reaches=fr["above_world_k"]))
        above = judged & (k > bounds.regional_k)
        if above.any():
            top = int(np.flatnonzero(above)[np.argmax(area[above])])
            warnings.append(_warning(
                "francou_rodier_regional",
                f"{int(above.sum())} tramos de ríos de más de "
                f"{bounds.francou_rodier_min_area_km2:,.0f} km² superan K = "
                f"{bounds.regional_k:g}, más que las crecidas registradas en El Salvador (el "
                f"mayor: tramo {top + 1}, {area[top]:,.0f} km², {peak[top]:,.0f} m³/s).",
                f"{int(above.sum())} reaches of rivers over "
                f"{bounds.francou_rodier_min_area_km2:,.0f} km² exceed K = "
                f"{bounds.regional_k:g}, beyond El Salvador's recorded floods (the largest: "
                f"reach {top + 1}, {area[top]:,.0f} km², {peak[top]:,.0f} m³/s).",
                reaches=int(above.sum())))

    if "celerity_m_s" in reaches:
        celerity = np.asarray(reaches["celerity_m_s"], np.float64)
        fast = large & river & (celerity > bounds.max_large_river_celerity_m_s)
        if fast.any():
            top = int(np.flatnonzero(fast)[np.argmax(celerity[fast])])
            slope = float(np.asarray(reaches["channel_slope"])[top])
            warnings.append(_warning(
                "fast_flood_wave",
                f"{int(fast.sum())} tramos de ríos grandes propagan la crecida a más de "
                f"{bounds.max_large_river_celerity_m_s:g} m/s (máx. {celerity[top]:.1f} m/s, "
                f"tramo {top + 1}, pendiente {slope:.4f}): llegada quizá demasiado temprana.",
                f"{int(fast.sum())} reaches of large rivers carry the flood wave faster than "
                f"{bounds.max_large_river_celerity_m_s:g} m/s (max {celerity[top]:.1f} m/s, "
                f"reach {top + 1}, slope {slope:.4f}): the arrival may be too early.",
                reaches=int(fast.sum())))
    if land_depth is not None:
        depth, catchment, cell_km2 = land_depth
        deep = np.nan_to_num(depth) > bounds.max_land_depth_m
        if deep.any():
            ids, counts = np.unique(catchment[deep], return_counts=True)
            worst = int(ids[np.argmax(counts)])
            warnings.append(_warning(
                "deep_land",
                f"{int(deep.sum())} celdas ({deep.sum() * cell_km2:.2f} km²) de terreno con "
                f"más de {bounds.max_land_depth_m:g} m de agua (máx. {np.nanmax(depth):.1f} m; "
                f"sobre todo junto al tramo {worst}).",
                f"{int(deep.sum())} cells ({deep.sum() * cell_km2:.2f} km²) of land under more "
                f"than {bounds.max_land_depth_m:g} m of water (max {np.nanmax(depth):.1f} m; "
                f"mostly by reach {worst}).", area_km2=round(float(deep.sum() * cell_km2), 2),
                reach_id=worst))

    rising = _rising_at_the_end(reaches, area, large, record)
    if rising:
        warnings.append(_warning(
            "still_rising",
            f"{rising['reaches']} tramos de ríos grandes siguen creciendo al final del "
            f"pronóstico (el mayor: tramo {rising['reach_id']}, {rising['area_km2']:,.0f} km², "
            f"{rising['discharge_m3s']:,.0f} m³/s): su pico llega después y será mayor.",
            f"{rising['reaches']} reaches of large rivers are still rising when the forecast "
            f"ends (the largest: reach {rising['reach_id']}, {rising['area_km2']:,.0f} km², "
            f"{rising['discharge_m3s']:,.0f} m³/s): their peak comes later and higher.",
            **rising))

    deepest = _deepest_settlements(settlements, reaches, area, bounds)
    for town in deepest:
        if town["max_depth_m"] > bounds.max_settlement_depth_m:
            warnings.append(_warning(
                "settlement_depth",
                f"{town['name']}: más de {bounds.max_settlement_depth_m:g} m de agua. "
                f"{town['why_es']}",
                f"{town['name']}: more than {bounds.max_settlement_depth_m:g} m of water. "
                f"{town['why_en']}", settlement_id=town["id"]))

    balance = record.get("mass_balance", {})
    error = abs(float(balance.get("relative_error", 0.0)))
    if error > bounds.max_mass_balance_error:
        warnings.append(_warning(
            "mass_balance",
            f"El balance de masa no cierra: error relativo {error:.1e}.",
            f"The mass balance does not close: relative error {error:.1e}.", error=error))
    for body in record.get("water_bodies", []):
        above_normal = body.get("peak_level_m", 0.0) > body.get("highest_normal_level_m",
                                                                  np.inf) + 0.05
        if above_normal and body.get("kind") == "reservoir" and not body.get("above_table"):
            warnings.append(_warning(
                "reservoir_above_normal",
                f"{body['name']} sube a {body['peak_level_m']:.2f} m s. n. m., sobre su nivel "
                f"máximo normal ({body['highest_normal_level_m']:.2f} m): descarga por el "
                "vertedero; confirmar la operación con CEL.",
                f"{body['name']} rises to {body['peak_level_m']:.2f} m a.s.l., above its "
                f"highest normal level ({body['highest_normal_level_m']:.2f} m): spillway "
                "release; confirm the operation with CEL.", water_body=body["id"]))
        if body.get("above_table"):
            warnings.append(_warning(
                "water_body_above_table",
                f"{body['name']} sube a {body['peak_level_m']:.2f} m s. n. m., sobre su tabla "
                f"de almacenamiento ({body['table_top_level_m']:.2f} m): nivel y descarga "
                "extrapolados; la inundación de su orilla se dibuja solo hasta el tope de la "
                "tabla.",
                f"{body['name']} rises to {body['peak_level_m']:.2f} m a.s.l., above its "
                f"storage table ({body['table_top_level_m']:.2f} m): level and outflow "
                "extrapolated; its shore is flooded on the map only up to the table's top.",
                water_body=body["id"]))
    return {
        "bounds_version": bounds.version,
        "rating_curves": curves,
        "francou_rodier": fr,
        "deepest_settlements": deepest,
        "warnings": warnings,
    }


def _rising_at_the_end(reaches: dict[str, np.ndarray], area: np.ndarray, large: np.ndarray,
                       record: dict[str, Any]) -> dict[str, Any] | None:
    """Large rivers whose peak is in the forecast's last hour: still rising at its end."""
    rain = record.get("rain", {})
    if "hours_to_peak" not in reaches or "start" not in rain or "end" not in rain:
        return None
    horizon_h = float((np.datetime64(rain["end"]) - np.datetime64(rain["start"]))
                      / np.timedelta64(1, "h"))
    hours = np.asarray(reaches["hours_to_peak"], np.float64)
    rising = large & np.isfinite(hours) & (hours >= horizon_h - 1.0)
    if not rising.any():
        return None
    r = int(np.flatnonzero(rising)[np.argmax(area[rising])])
    return {"reaches": int(rising.sum()), "reach_id": r + 1,
            "area_km2": round(float(area[r]), 1),
            "discharge_m3s": round(float(reaches["peak_m3s"][r]), 1)}


def _largest_outlets(area: np.ndarray, downstream: np.ndarray, n: int = 5) -> list[int]:
    """The outlet reaches of the ``n`` largest basins (0-based), one per river."""
    outlets = np.flatnonzero(np.asarray(downstream) < 0)
    return [int(r) for r in outlets[np.argsort(-area[outlets])][:n]]


def _deepest_settlements(settlements: pd.DataFrame | None, reaches: dict[str, np.ndarray],
                         area: np.ndarray, bounds: PlausibilityBounds) -> list[dict[str, Any]]:
    """The deepest settlements, each with why: the reach that floods it, its peak, class and
    overbank stage, and how high the settlement's lowest land stands above that river."""
    if settlements is None or len(settlements) == 0:
        return []
    top = settlements.sort_values("max_depth_m", ascending=False).head(
        bounds.deepest_settlements_listed)
    out = []
    for row in top.itertuples():
        depth = float(row.max_depth_m)
        reach = int(row.flooding_reach_id)
        entry: dict[str, Any] = {"id": int(row.id), "name": str(row.name),
                                 "max_depth_m": round(depth, 2), "reach_id": reach}
        if depth <= 0 or reach <= 0:
            entry["why_es"] = "Sin agua sobre el terreno."
            entry["why_en"] = "No water on land."
            out.append(entry)
            continue
        r = reach - 1
        stage = float(reaches["peak_stage_m"][r])
        peak = float(reaches["peak_m3s"][r])
        rp = int(reaches["return_period_class"][r])
        k = float(reaches["francou_rodier_k"][r])
        hand = max(stage - depth, 0.0)
        rp_es = f"crecida de {rp} años o más" if rp else "menos que la crecida de 2 años"
        rp_en = f"a {rp}-year flood or more" if rp else "below the 2-year flood"
        notes_es, notes_en = [], []
        if bool(reaches["rating_curve_extended"][r]):
            notes_es.append("curva de gasto extrapolada más allá del MDE")
            notes_en.append("rating curve extended beyond the DEM")
        if np.isfinite(k) and k > bounds.regional_k and area[r] >= \
                bounds.francou_rodier_min_area_km2:
            notes_es.append(f"pico sobre los registros salvadoreños (K = {k:.1f})")
            notes_en.append(f"peak beyond Salvadoran records (K = {k:.1f})")
        entry.update({
            "upstream_area_km2": round(float(area[r]), 1), "peak_m3s": round(peak, 1),
            "return_period_class": rp, "overbank_stage_m": round(stage, 2),
            "lowest_land_above_river_m": round(hand, 2),
            "why_es": (f"El río del tramo {reach} ({area[r]:,.0f} km²) llega a {peak:,.0f} m³/s "
                       f"({rp_es}) y sube {stage:.1f} m sobre su cauce lleno; el terreno más bajo "
                       f"del asentamiento está {hand:.1f} m sobre ese río"
                       + (f" ({'; '.join(notes_es)})" if notes_es else "") + "."),
            "why_en": (f"The river of reach {reach} ({area[r]:,.0f} km²) peaks at {peak:,.0f} "
                       f"m³/s ({rp_en}) and rises {stage:.1f} m above bankfull; the "
                       f"settlement's lowest land is {hand:.1f} m above that river"
                       + (f" ({'; '.join(notes_en)})" if notes_en else "") + "."),
        })
        out.append(entry)
    return out
