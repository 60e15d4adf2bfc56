"""Expected annual exposure: people exposed, evacuees and unplaced evacuees by return period,
integrated over annual exceedance probability, per settlement, municipality, department and
reach; and the return period from which each collective centre is unsafe.

The expected annual value of a quantity X known for the scenarios of return periods
T1 < … < Tn (annual exceedance probabilities f_k = 1/T_k) is E = ∫ X(f) df over f in [0, 1],
the way expected annual damage is computed in flood risk models such as Delft-FIAT, with its
assumptions:

1. X = 0 for floods more frequent than the first scenario (f > f1);
2. X = Xn for floods rarer than the last (f < fn): no flood worse than the worst scenario;
3. between two scenarios X is linear in ln f.

E is then a weighted sum Σ a_k X_k with weights a_k that depend only on the return periods
(:func:`annual_probability_weights`); expected values add up, so a municipality's is the sum
of its settlements'. With 2…100-year scenarios, E undercounts what floods more often than every
two years exposes and whatever exceeds the 100-year flood adds — both said in the outputs.

References
----------
Deltares, Delft-FIAT (Flood Impact Assessment Tool) documentation, "Risk calculation": expected
annual damage from damages at return periods, log-linear interpolation in frequency.
Meyer, V., Haase, D. & Scheuer, S. (2009) Flood risk assessment in European river basins —
concept, methods, and challenges exemplified at the Mulde river. Integrated Environmental
Assessment and Management 5(1), 17-26 (EAD as the integral of damage over exceedance
probability).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from floodwarn.errors import InputError

#: The administrative columns kept in every settlement table.
PLACE_COLUMNS = ("id", "name", "municipality_id", "municipality", "department",
                 "department_code", "population")


def annual_probability_weights(return_periods: Sequence[float]) -> np.ndarray:
    """Weights a_k with E = Σ a_k X_k (see the module's description), for return periods in
    increasing order.

    On the segment between f_k > f_(k+1), with L = ln f_k − ln f_(k+1) and
    I = [f ln f − f] from f_(k+1) to f_k − ln f_(k+1) (f_k − f_(k+1)), the integral of the
    log-linear X is X_k I/L + X_(k+1) (f_k − f_(k+1) − I/L); the last scenario adds
    f_n X_n (the rare tail).
    """
    t = np.asarray(return_periods, np.float64)
    if t.ndim != 1 or t.size == 0 or np.any(t <= 1) or np.any(np.diff(t) <= 0):
        raise InputError(f"return periods {t.tolist()}: give increasing values > 1 year.")
    f = 1.0 / t
    weights = np.zeros(t.size)
    for k in range(t.size - 1):
        hi, lo = f[k], f[k + 1]
        span = np.log(hi) - np.log(lo)
        integral = (hi * np.log(hi) - hi) - (lo * np.log(lo) - lo) - np.log(lo) * (hi - lo)
        weights[k] += integral / span
        weights[k + 1] += (hi - lo) - integral / span
    weights[-1] += f[-1]
    return weights


def expected_annual(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """E = Σ_k a_k X_k over the first axis of ``values`` (scenario, …)."""
    return np.tensordot(weights, np.asarray(values, np.float64), axes=(0, 0))


def first_return_period(flags: np.ndarray, return_periods: Sequence[int]) -> np.ndarray:
    """Per column of ``flags`` (scenario, item), the smallest return period whose flag is set;
    NaN when none is."""
    flags = np.asarray(flags, bool)
    t = np.asarray(return_periods, np.float64)[:, None]
    first = np.where(flags, t, np.inf).min(axis=0)
    return np.where(np.isfinite(first), first, np.nan)


def settlement_exposure(settlements: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """Per settlement: people exposed, evacuees, unplaced evacuees and level in each return
    period's scenario (``settlements`` by return period, the scenario's settlement tables in
    the same order), their expected annual values (``eae_…``), and the first return period
    that exposes people (``exposed_from_rp``) or calls for evacuation
    (``evacuation_from_rp``)."""
    periods = sorted(settlements)
    _same_rows(settlements, "settlements", "id")
    first = settlements[periods[0]]
    missing = [c for c in PLACE_COLUMNS if c not in first.columns]
    if missing:
        raise InputError(f"scenario settlements lack columns {missing}.")
    table = pd.DataFrame({c: first[c].to_numpy() for c in PLACE_COLUMNS})
    weights = annual_probability_weights(periods)
    for column, prefix in (("people_exposed", "people_exposed"), ("evacuees", "evacuees"),
                           ("unmet_evacuees", "unplaced_evacuees")):
        stack = np.stack([settlements[t][column].to_numpy(np.float64) for t in periods])
        for t, values in zip(periods, stack, strict=True):
            table[f"{prefix}_rp{t}"] = values.astype(np.int64)
        table[f"eae_{prefix}"] = expected_annual(stack, weights).round(2)
        if column == "people_exposed":
            table["exposed_from_rp"] = first_return_period(stack > 0, periods)
        if column == "evacuees":
            table["evacuation_from_rp"] = first_return_period(stack > 0, periods)
    for t in periods:
        table[f"level_rp{t}"] = settlements[t]["level"].to_numpy()
    return table


def area_exposure(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """The settlement table summed per municipality (``by="municipality"``) or department
    (``by="department"``): population, people and evacuees by return period and their
    expected annual values (expected values add up), settlements exposed from each return
    period; sorted by expected annual people exposed, most first."""
    keys = {"municipality": ["municipality_id", "municipality", "department",
                             "department_code"],
            "department": ["department_code", "department"]}
    if by not in keys:
        raise InputError(f"exposure by {by!r}: give 'municipality' or 'department'.")
    numeric = [c for c in table.columns
               if c == "population" or c.startswith(("people_exposed_rp", "evacuees_rp",
                                                     "unplaced_evacuees_rp", "eae_"))]
    grouped = table.groupby(keys[by], sort=False, dropna=False)
    out = grouped[numeric].sum()
    out["settlements"] = grouped.size()
    out["settlements_exposed_by_rp100"] = grouped["exposed_from_rp"].count()
    return out.reset_index().sort_values(["eae_people_exposed", keys[by][0]],
                                         ascending=[False, True], ignore_index=True)


def centre_exposure(centres: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """Per collective centre: its status and occupancy in each scenario, and the return
    period from which it is unsafe (``unsafe_from_rp``) or at least at risk
    (``at_risk_from_rp``); NaN when no scenario reaches it."""
    periods = sorted(centres)
    _same_rows(centres, "centres", "id")
    first = centres[periods[0]]
    keep = [c for c in ("id", "name", "kind", "capacity", "shelter", "municipality_id",
                        "municipality", "department", "department_code") if c in first.columns]
    table = pd.DataFrame({c: first[c].to_numpy() for c in keep})
    status = np.stack([centres[t]["status"].to_numpy().astype(str) for t in periods])
    for t, values in zip(periods, status, strict=True):
        table[f"status_rp{t}"] = values
        table[f"occupancy_rp{t}"] = centres[t]["occupancy"].to_numpy(np.int64)
    table["unsafe_from_rp"] = first_return_period(status == "unsafe", periods)
    table["at_risk_from_rp"] = first_return_period(status != "safe", periods)
    return table


def reach_exposure(people_by_reach: Mapping[int, np.ndarray], reach_id: np.ndarray
                   ) -> pd.DataFrame:
    """Reaches ranked by the expected annual people their flooding reaches (``rank`` 1 first),
    with the people of each scenario: where defences or channel works would spare the most
    people, to study first. Reaches that flood nobody in any scenario are left out."""
    periods = sorted(people_by_reach)
    stack = np.stack([np.asarray(people_by_reach[t], np.float64) for t in periods])
    eae = expected_annual(stack, annual_probability_weights(periods))
    table = pd.DataFrame({"reach_id": np.asarray(reach_id)})
    for t, values in zip(periods, stack, strict=True):
        table[f"people_exposed_rp{t}"] = np.round(values).astype(np.int64)
    table["eae_people_exposed"] = eae.round(2)
    table["exposed_from_rp"] = first_return_period(stack >= 0.5, periods)
    table = table[stack.max(axis=0) >= 0.5].sort_values(
        ["eae_people_exposed", "reach_id"], ascending=[False, True], ignore_index=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def _same_rows(frames: Mapping[int, pd.DataFrame], what: str, key: str) -> None:
    if not frames:
        raise InputError(f"no scenario {what} to combine.")
    ids = [frame[key].astype(str).to_numpy() for frame in frames.values()]
    if any(len(i) != len(ids[0]) or np.any(i != ids[0]) for i in ids[1:]):
        raise InputError(f"the scenarios' {what} differ; run every return period on the same "
                         "terrain and layers.")
