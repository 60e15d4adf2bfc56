"""Warehouse stock: reading the table (every bad row named) and allocating it to the needs per
municipality, worked out by hand on a line of three municipalities and two warehouses."""

from __future__ import annotations

import pandas as pd
import pytest

from floodwarn.errors import InputError
from floodwarn.sites.stock import ITEM_NEEDS, read_stock, stock_gaps

GOOD_CSV = """warehouse_id,name,lon,lat,item,quantity,lead_time_h
B1,Bodega San Salvador,-89.19,13.69,water_l,50000,6
B1,Bodega San Salvador,-89.19,13.69,hygiene_kits,400,6
B2,Bodega San Miguel,-88.18,13.48,nfi_kits,250,24
"""


def test_read_stock_in_english():
    stock = read_stock(GOOD_CSV.encode())
    assert list(stock.columns) == ["warehouse_id", "name", "lon", "lat", "item", "quantity",
                                   "lead_time_h"]
    assert stock["quantity"].tolist() == [50000, 400, 250]
    assert stock["lead_time_h"].tolist() == [6, 6, 24]
    assert stock.loc[2, "name"] == "Bodega San Miguel"


def test_read_stock_with_spanish_headers_semicolons_and_bom(tmp_path):
    path = tmp_path / "existencias.csv"
    path.write_bytes("\ufeffBodega;Nombre;Lon;Lat;Artículo;Cantidad;Tiempo_entrega_h\n"
                     "B9;Bodega Usulután;-88,44;13,35;menstrual_hygiene_kits;120;12\n"
                     .encode())
    stock = read_stock(path)
    assert stock.iloc[0].to_dict() == {
        "warehouse_id": "B9", "name": "Bodega Usulután", "lon": -88.44, "lat": 13.35,
        "item": "menstrual_hygiene_kits", "quantity": 120.0, "lead_time_h": 12.0}


def test_every_bad_row_is_named_with_its_line_and_column():
    bad = (GOOD_CSV
           + ",Sin código,-89.0,13.7,nfi_kits,10,5\n"          # line 5: no id
           + "B3,Bodega Tegucigalpa,-87.2,14.1,nfi_kits,10,5\n"  # line 6: Honduras
           + "B4,Bodega Santa Ana,-89.56,13.99,blankets,10,5\n"  # line 7: unknown item
           + "B4,Bodega Santa Ana,-89.56,13.99,nfi_kits,-3,x\n"  # line 8: quantity, lead
           + "B1,Bodega San Salvador,-89.19,13.69,water_l,10,6\n"  # line 9: repeated
           + "B2,Bodega Soyapango,-88.18,13.48,water_l,10,6\n")  # line 10: another name
    with pytest.raises(InputError) as error:
        read_stock(bad.encode())
    message = str(error.value)
    assert "7 problem(s), nothing imported" in message
    for expected in ("line 5, column warehouse_id", "line 6, column lon",
                     "line 7, column item: 'blankets' must be one of water_l",
                     "line 8, column quantity: '-3'", "line 8, column lead_time_h: 'x'",
                     "line 9, column item: warehouse 'B1' lists 'water_l' again",
                     "line 10, column name: warehouse 'B2' has 'Bodega Soyapango'"):
        assert expected in message
    assert message.index("line 5") < message.index("line 10")


def test_thousands_groups_and_fractions_of_kits_are_refused():
    bad = ("warehouse_id,name,lon,lat,item,quantity,lead_time_h\n"
           "B1,Bodega,-89.19,13.69,hygiene_kits,1.500,6\n"   # line 2: 1,500 or 1.5?
           "B1,Bodega,-89.19,13.69,nfi_kits,2.5,6\n"         # line 3: half a kit
           "B1,Bodega,-89.19,13.69,water_l,2.5,6\n")         # litres may have decimals
    with pytest.raises(InputError) as raised:
        read_stock(bad.encode())
    text = str(raised.value)
    assert "line 2, column quantity: '1.500' is ambiguous" in text
    assert "line 3, column quantity: '2.5' is not a whole number of kits" in text
    assert "line 4" not in text


def test_missing_columns_are_named():
    with pytest.raises(InputError, match=r"columns \['lead_time_h'\] are missing"):
        read_stock(b"bodega,nombre,lon,lat,articulo,cantidad\nB1,X,-89,13.7,nfi_kits,1\n")


# Three municipalities on a line 10 km apart and two warehouses (x in metres):
#   W1 "Lenta"  at x = 0      (on M1), lead time 48 h
#   M1 x = 0, M2 x = 10 km, M3 x = 20 km
#   W2 "Rápida" at x = 30 km, lead time 6 h
# Flooding reaches M1 in 12 h (only W2 is in time), M2 in 72 h (both), M3 not at all.
MUNICIPALITY_XY = pd.DataFrame({"x": [0.0, 10_000.0, 20_000.0], "y": 0.0},
                               index=["M1", "M2", "M3"])
HOURS = pd.Series({"M1": 12.0, "M2": 72.0})


def _needs(**columns: list[float]) -> pd.DataFrame:
    needs = pd.DataFrame({c: 0.0 for c in ITEM_NEEDS.values()},
                         index=pd.Index(["M1", "M2", "M3"], name="municipality_id"))
    for column, values in columns.items():
        needs[column] = values
    return needs


def _stock(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    where = {"W1": ("Lenta", 0.0, 48.0), "W2": ("Rápida", 30_000.0, 6.0)}
    return pd.DataFrame([{"warehouse_id": w, "name": where[w][0], "lon": -89.0, "lat": 13.7,
                          "item": item, "quantity": quantity, "lead_time_h": where[w][2],
                          "x": where[w][1], "y": 0.0} for w, item, quantity in rows])


def _moves(moves: pd.DataFrame, item: str) -> dict[tuple[str, str], float]:
    rows = moves[moves["item"] == item]
    return {(w, m): q for w, m, q in zip(rows["warehouse_id"], rows["municipality_id"],
                                         rows["quantity"], strict=True)}


def test_stock_that_arrives_in_time_goes_first_to_the_most_urgent():
    # Water for the planning days: M1 50 l, M2 40 l, M3 30 l; W1 holds 100 l, W2 60 l.
    # M1 (12 h) can only be served in time by W2: 50 l from W2 (30 km), W2 keeps 10.
    # M2 (72 h) may use both: W1 is 10 km away, W2 20 km → 40 l from W1, W1 keeps 60.
    # M3 (no impact) last, nearest first: 10 l from W2 (10 km), 20 l from W1 (20 km).
    needs = _needs(water_l_planning=[50, 40, 30])
    gaps, moves = stock_gaps(needs, MUNICIPALITY_XY,
                             _stock([("W1", "water_l", 100), ("W2", "water_l", 60)]),
                             hours_to_impact=HOURS)
    assert _moves(moves, "water_l") == {("W2", "M1"): 50, ("W1", "M2"): 40,
                                        ("W2", "M3"): 10, ("W1", "M3"): 20}
    water = moves[moves["item"] == "water_l"].set_index(["warehouse_id", "municipality_id"])
    assert water.loc[("W2", "M1"), "distance_km"] == 30
    assert water.loc[("W2", "M1"), "warehouse_name"] == "Rápida"
    assert bool(water.loc[("W2", "M1"), "arrives_before_impact"])
    assert pd.isna(water.loc[("W1", "M3"), "arrives_before_impact"])
    water_gaps = gaps[gaps["item"] == "water_l"].set_index("municipality_id")
    assert water_gaps["allocated"].tolist() == [50, 40, 30]
    assert water_gaps["gap"].tolist() == [0, 0, 0]
    assert water_gaps.loc["M1", "allocated_in_time"] == 50
    assert pd.isna(water_gaps.loc["M3", "allocated_in_time"])


def test_without_times_to_impact_distance_alone_decides():
    # Nearest first: M1 takes 50 l from W1 (0 km), M2 40 l from W1 (10 km; W2 is 20 km), and
    # M3 30 l from W2 (10 km; W1 has only 10 l left and is 20 km away).
    # 0×50 + 10×40 + 10×30 = 700 l·km, against 2,400 l·km when time to impact counts.
    _, moves = stock_gaps(_needs(water_l_planning=[50, 40, 30]), MUNICIPALITY_XY,
                          _stock([("W1", "water_l", 100), ("W2", "water_l", 60)]))
    assert _moves(moves, "water_l") == {("W1", "M1"): 50, ("W1", "M2"): 40, ("W2", "M3"): 30}
    assert (moves["quantity"] * moves["distance_km"]).sum() == 700
    assert moves["arrives_before_impact"].isna().all()


def test_late_stock_is_still_sent_and_shortages_are_gaps():
    # NFI kits: M1 needs 20; W2 (in time) has 10, W1 (too slow for M1's 12 h) 30 → 10 in time
    # from W2, 10 late from W1. Emergency shelter kits: M3 needs 5, no warehouse has any.
    needs = _needs(nfi_kits=[20, 0, 0], emergency_shelter_kits=[0, 0, 5])
    gaps, moves = stock_gaps(needs, MUNICIPALITY_XY,
                             _stock([("W1", "nfi_kits", 30), ("W2", "nfi_kits", 10)]),
                             hours_to_impact=HOURS)
    assert _moves(moves, "nfi_kits") == {("W2", "M1"): 10, ("W1", "M1"): 10}
    late = moves[(moves["item"] == "nfi_kits") & (moves["warehouse_id"] == "W1")].iloc[0]
    assert not late["arrives_before_impact"]
    nfi = gaps[(gaps["item"] == "nfi_kits")].set_index("municipality_id").loc["M1"]
    assert (nfi["need"], nfi["allocated"], nfi["allocated_in_time"], nfi["gap"]) == \
        (20, 20, 10, 0)
    shelter = gaps[gaps["item"] == "emergency_shelter_kits"].set_index("municipality_id")
    assert (shelter.loc["M3", "allocated"], shelter.loc["M3", "gap"]) == (0, 5)
    assert len(gaps) == 3 * len(ITEM_NEEDS)


def test_municipality_without_a_point_is_refused():
    with pytest.raises(InputError, match=r"municipalities \['M3'\] have needs but no point"):
        stock_gaps(_needs(water_l_planning=[1, 1, 1]), MUNICIPALITY_XY.iloc[:2],
                   _stock([("W1", "water_l", 10)]))
