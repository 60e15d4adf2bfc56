"""CAP 1.2 messages valid against the OASIS schema, and the alert lifecycle."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree
from shapely.geometry import box

from floodwarn.alerts.cap import (
    CAP_NS,
    Community,
    MunicipalWarning,
    cap_message,
    cap_time,
    urgency,
    validate_cap,
)
from floodwarn.alerts.lifecycle import InForce, decide
from floodwarn.errors import InputError

START = datetime(2020, 5, 31, 6, 0, tzinfo=UTC)
NS = {"cap": CAP_NS}


def _warning(level="roja", hours=5.0, probability=None):
    return MunicipalWarning(
        municipality_id="SLV-ADM2-1", municipality="San Salvador", department="San Salvador",
        department_code="SV-SS", level=level, forecast_start=START,
        expires=START + timedelta(hours=72), area=box(-89.25, 13.65, -89.15, 13.75),
        communities=(Community("Colonia Ribera", level, 1.6, 820, hours,
                               (("Centro Escolar Uno", 200),), unmet=120),),
        probability=probability)


def test_without_an_assigned_shelter_the_instruction_says_so():
    nowhere = dataclasses.replace(_warning(), communities=(
        Community("Colonia Ribera", "roja", 1.6, 820, 5.0, (), unmet=820),))
    xml = cap_message(nowhere, identifier="fw-9", sender="floodwarn@example.sv",
                      sent=START, status="Exercise", msg_type="Alert")
    validate_cap(xml)
    es, en = etree.fromstring(xml).findall("cap:info", NS)
    text = es.findtext("cap:instruction", namespaces=NS)
    assert "albergues asignados" not in text and "ningún albergue habilitado" in text
    assert "terreno alto y seguro" in text and "5 h" in text
    assert "no usable shelter" in en.findtext("cap:instruction", namespaces=NS)
    sheltered = cap_message(_warning(), identifier="fw-10", sender="floodwarn@example.sv",
                            sent=START, status="Exercise", msg_type="Alert")
    assert "albergues asignados" in etree.fromstring(sheltered).findtext(
        "cap:info/cap:instruction", namespaces=NS)


def test_alert_is_valid_cap_with_spanish_first():
    xml = cap_message(_warning(), identifier="fw-1", sender="floodwarn@example.sv",
                      sent=START, status="Exercise", msg_type="Alert")
    doc = etree.fromstring(xml)
    infos = doc.findall("cap:info", NS)
    assert [i.findtext("cap:language", namespaces=NS) for i in infos] == ["es-SV", "en-US"]
    es = infos[0]
    assert es.findtext("cap:responseType", namespaces=NS) == "Evacuate"
    assert es.findtext("cap:severity", namespaces=NS) == "Extreme"
    assert es.findtext("cap:urgency", namespaces=NS) == "Immediate"  # flooding in 5 h
    assert es.findtext("cap:onset", namespaces=NS) == "2020-05-31T05:00:00-06:00"
    assert "Colonia Ribera" in es.findtext("cap:description", namespaces=NS)
    # The number is the people this community sends there, said in words.
    assert "Centro Escolar Uno (200 personas asignadas)" in es.findtext("cap:description",
                                                                        namespaces=NS)
    assert "120 personas sin albergue" in es.findtext("cap:description", namespaces=NS)
    polygon = es.find("cap:area/cap:polygon", NS).text.split()
    assert polygon[0] == polygon[-1] and len(polygon) >= 4
    assert doc.findtext("cap:status", namespaces=NS) == "Exercise"


@pytest.mark.parametrize(("level", "response", "severity"), [
    ("amarilla", "Monitor", "Moderate"), ("naranja", "Prepare", "Severe"),
    ("roja", "Evacuate", "Extreme")])
def test_levels_map_to_response_and_severity(level, response, severity):
    xml = cap_message(_warning(level, hours=30.0, probability=0.8), identifier="fw-2",
                      sender="s", sent=START, status="Actual", msg_type="Alert")
    info = etree.fromstring(xml).find("cap:info", NS)
    assert info.findtext("cap:responseType", namespaces=NS) == response
    assert info.findtext("cap:severity", namespaces=NS) == severity
    assert info.findtext("cap:urgency", namespaces=NS) == "Expected"
    assert info.findtext("cap:certainty", namespaces=NS) == "Likely"


@pytest.mark.parametrize(("probability", "certainty"), [
    (None, "Likely"),  # a deterministic forecast: its level is what it forecasts
    (1.0, "Likely"), (0.76, "Likely"), (0.51, "Likely"),
    (0.5, "Possible"), (0.3, "Possible")])  # CAP 1.2 §3.2.2: Likely p > ~50 %
def test_certainty_follows_the_ensemble_probability(probability, certainty):
    xml = cap_message(_warning("amarilla", probability=probability), identifier="fw-9",
                      sender="s", sent=START, status="Actual", msg_type="Alert")
    info = etree.fromstring(xml).find("cap:info", NS)
    assert info.findtext("cap:certainty", namespaces=NS) == certainty
    parameters = {p.findtext("cap:valueName", namespaces=NS): p.findtext("cap:value",
                                                                          namespaces=NS)
                  for p in info.findall("cap:parameter", NS)}
    if probability is not None:
        assert parameters["floodwarn:probability"] == f"{probability:.2f}"


def test_update_and_cancel_reference_the_previous_message():
    sent = START + timedelta(hours=6)
    update = cap_message(_warning("naranja"), identifier="fw-3", sender="s", sent=sent,
                         status="Actual", msg_type="Update", references=(("s", "fw-1", START),))
    assert etree.fromstring(update).findtext("cap:references", namespaces=NS) == \
        "s,fw-1,2020-05-31T00:00:00-06:00"
    cancel = cap_message(None, identifier="fw-4", sender="s", sent=sent, status="Actual",
                         msg_type="Cancel", references=(("s", "fw-3", sent),),
                         cancelled=("San Salvador", "San Salvador"))
    info = etree.fromstring(cancel).find("cap:info", NS)
    assert info.findtext("cap:responseType", namespaces=NS) == "AllClear"
    with pytest.raises(InputError, match="must reference"):
        cap_message(_warning(), identifier="x", sender="s", sent=sent, status="Actual",
                    msg_type="Update")


def test_invalid_cap_is_refused():
    bad = (f'<alert xmlns="{CAP_NS}"><identifier>x</identifier><sender>s</sender>'
           '<sent>2020-05-31T00:00:00-06:00</sent><status>BOGUS</status><msgType>Alert'
           '</msgType><scope>Public</scope></alert>').encode()
    with pytest.raises(InputError, match=r"invalid against CAP 1\.2"):
        validate_cap(bad)
    with pytest.raises(InputError, match="timezone-aware"):
        cap_time(datetime(2020, 1, 1))
    assert urgency(_warning(hours=None), START) == "Expected"


def test_lifecycle_alert_update_nothing_cancel():
    old = {"A": InForce("A", "fw-1", "s", START, "amarilla"),
           "B": InForce("B", "fw-2", "s", START, "roja"),
           "C": InForce("C", "fw-3", "s", START, "naranja")}
    new = {"A": _warning("naranja"), "B": _warning("roja"), "D": _warning("amarilla")}
    decisions = decide(old, new)
    assert [(d.msg_type, d.municipality_id) for d in decisions] == [
        ("Update", "A"), ("Cancel", "C"), ("Alert", "D")]
    assert decisions[0].previous.identifier == "fw-1"
    assert decide(old, {k: _warning(v.level) for k, v in old.items()}) == []


def test_same_level_beyond_the_expiry_in_force_extends_it():
    expires = START + timedelta(hours=72)  # as _warning's
    old = {"A": InForce("A", "fw-1", "s", START, "roja", expires=expires)}
    assert decide(old, {"A": _warning("roja")}) == []  # same news, same horizon
    later = dataclasses.replace(_warning("roja"), expires=expires + timedelta(hours=6))
    (update,) = decide(old, {"A": later})
    assert update.msg_type == "Update" and update.previous.identifier == "fw-1"
    earlier = dataclasses.replace(_warning("roja"), expires=expires - timedelta(hours=6))
    assert decide(old, {"A": earlier}) == []  # the message in force already covers it


def test_municipal_warnings_from_risk_tables():
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import Point

    from floodwarn.alerts.lifecycle import municipal_warnings
    from floodwarn.io.gis_data import load_municipalities

    municipalities = load_municipalities()
    muni = municipalities[municipalities["name"] == "San Salvador"].iloc[0]
    towns = gpd.GeoDataFrame({
        "id": [1, 2, 3], "name": ["Ribera", "Loma", "Otro"],
        "municipality_id": [muni["id"], muni["id"], "elsewhere"],
        "level": ["roja", "verde", "verde"], "max_depth_m": [1.8, 0.0, 0.0],
        "people_exposed": [900, 0, 0], "hours_to_flooding": [7.0, float("nan"), float("nan")],
        "risk_score": [1500.0, 0.0, 0.0], "unmet_evacuees": [100, 0, 0],
        "prob_roja": [0.6, 0.0, 0.0]}, geometry=[Point(-89.19, 13.69)] * 3, crs="EPSG:4326")
    centres = gpd.GeoDataFrame({"id": [10], "name": ["Centro Escolar Uno"]},
                               geometry=[Point(-89.2, 13.7)], crs="EPSG:4326")
    plan = pd.DataFrame({"settlement_id": [1, 1], "centre_id": ["10", ""],
                         "people": [800, 100], "distance_km": [2.0, float("nan")]})
    warnings = municipal_warnings(towns, plan, centres, municipalities, forecast_start=START,
                                  expires=START + timedelta(hours=72))
    assert list(warnings) == [muni["id"]]  # only the municipality at amarilla or above
    w = warnings[muni["id"]]
    assert w.level == "roja" and w.probability == pytest.approx(0.6)
    assert [c.name for c in w.communities] == ["Ribera"]
    assert w.communities[0].shelters == (("Centro Escolar Uno", 800),)
    assert w.onset == START + timedelta(hours=7)
    xml = cap_message(w, identifier="fw-9", sender="s", sent=START, status="Exercise",
                      msg_type="Alert")
    assert b"Ribera" in xml


def test_atom_feed_links_each_cap_message_newest_first():
    from floodwarn.alerts.atom import ATOM_NS, FeedEntry, atom_feed

    entries = [FeedEntry("fw-1", "Alerta ROJA", "…", START, "http://x/alerts/fw-1.xml", "A"),
               FeedEntry("fw-2", "Alerta NARANJA", "…", START + timedelta(hours=1),
                         "http://x/alerts/fw-2.xml", "B")]
    doc = etree.fromstring(atom_feed(entries, feed_id="urn:floodwarn:feed",
                                     self_url="http://x/alerts/feed.atom", title="floodwarn",
                                     updated=START + timedelta(hours=1)))
    ns = {"a": ATOM_NS}
    ids = [e.findtext("a:id", namespaces=ns) for e in doc.findall("a:entry", ns)]
    assert ids == ["urn:floodwarn:cap:fw-2", "urn:floodwarn:cap:fw-1"]
    link = doc.find("a:entry/a:link", ns)
    assert link.get("type") == "application/cap+xml" and link.get("href").endswith("fw-2.xml")


def test_warnings_carry_official_names_not_the_boundary_files_spelling():
    """The boundary file spells them Ahuachpan and Chalatenago; committees read the
    official names."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import Point

    from floodwarn.alerts.lifecycle import municipal_warnings
    from floodwarn.io.gis_data import load_municipalities

    municipalities = load_municipalities()
    ids = {name: municipalities.loc[municipalities["name"] == name, "id"].item()
           for name in ("Ahuachapán", "Chalatenango")}
    towns = gpd.GeoDataFrame({
        "id": [1, 2], "name": ["Barrio El Calvario", "Barrio San Antonio"],
        "municipality_id": [ids["Ahuachapán"], ids["Chalatenango"]],
        "level": ["roja", "naranja"], "max_depth_m": [1.2, 0.6],
        "people_exposed": [300, 80], "hours_to_flooding": [4.0, 10.0],
        "risk_score": [500.0, 90.0], "unmet_evacuees": [0, 0]},
        geometry=[Point(-89.845, 13.921), Point(-88.935, 14.043)], crs="EPSG:4326")
    centres = gpd.GeoDataFrame({"id": [10], "name": ["Centro Escolar"]},
                               geometry=[Point(-89.84, 13.92)], crs="EPSG:4326")
    plan = pd.DataFrame({"settlement_id": [], "centre_id": [], "people": []})
    warnings = municipal_warnings(towns, plan, centres, municipalities, forecast_start=START,
                                  expires=START + timedelta(hours=72))
    headlines = {}
    for name, muni in ids.items():
        doc = etree.fromstring(cap_message(warnings[muni], identifier=f"fw-{name}", sender="s",
                                           sent=START, status="Exercise", msg_type="Alert"))
        es, en = doc.findall("cap:info", NS)
        headlines[name] = es.findtext("cap:headline", namespaces=NS)
        assert es.findtext("cap:area/cap:areaDesc", namespaces=NS) == f"{name}, {name}"
        assert en.findtext("cap:headline", namespaces=NS).endswith(f"for {name}, {name}")
    assert headlines == {  # an exercise says so where people read it
        "Ahuachapán": "SIMULACRO: Alerta ROJA por inundación en Ahuachapán, Ahuachapán",
        "Chalatenango": "SIMULACRO: Alerta NARANJA por inundación en Chalatenango, "
                        "Chalatenango"}
    assert doc.findtext("cap:note", namespaces=NS).startswith(
        "SIMULACRO con datos SINTÉTICOS: no es una alerta real.")
    actual = etree.fromstring(cap_message(warnings[ids["Ahuachapán"]], identifier="fw-real",
                                          sender="s", sent=START, status="Actual",
                                          msg_type="Alert"))
    assert actual.find("cap:note", NS) is None
    assert actual.findtext("cap:info/cap:headline", namespaces=NS).startswith("Alerta ROJA")
