"""CAP 1.2 messages for municipal flood warnings, Spanish (es-SV) first, English second.

References
----------
OASIS (2010) Common Alerting Protocol Version 1.2, OASIS Standard, 1 July 2010.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from floodwarn.errors import InputError

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
SCHEMA = Path(__file__).parent / "schema" / "CAP-v1.2.xsd"
#: El Salvador keeps UTC−6 all year; CAP times carry the offset of the issuing office.
SV_TIME = timezone(timedelta(hours=-6))

#: Level → CAP severity (OASIS CAP 1.2 §3.2.2).
SEVERITY = {"amarilla": "Moderate", "naranja": "Severe", "roja": "Extreme"}
#: Level → CAP responseType: what committees should do.
RESPONSE = {"amarilla": "Monitor", "naranja": "Prepare", "roja": "Evacuate"}
LEVEL_NAMES = {"es": {"amarilla": "AMARILLA", "naranja": "NARANJA", "roja": "ROJA"},
               "en": {"amarilla": "YELLOW", "naranja": "ORANGE", "roja": "RED"}}


@dataclass(frozen=True)
class Community:
    """A settlement named in a warning, with what is expected there."""

    name: str
    level: str
    max_depth_m: float
    people_exposed: int
    hours_to_flooding: float | None
    shelters: tuple[tuple[str, int], ...] = ()
    unmet: int = 0


@dataclass(frozen=True)
class MunicipalWarning:
    """What one municipality's committee is warned of by one forecast."""

    municipality_id: str
    municipality: str
    department: str
    department_code: str
    level: str
    forecast_start: datetime
    expires: datetime
    area: BaseGeometry  # lon/lat
    communities: tuple[Community, ...] = field(default_factory=tuple)
    probability: float | None = None  # P(level) for ensembles

    @property
    def onset(self) -> datetime | None:
        hours = [c.hours_to_flooding for c in self.communities if c.hours_to_flooding is not None]
        return self.forecast_start + timedelta(hours=min(hours)) if hours else None


def cap_time(t: datetime) -> str:
    """CAP dateTime: local El Salvador time with its offset, no fractions (CAP §3.3.2)."""
    if t.tzinfo is None:
        raise InputError("CAP times must be timezone-aware.")
    return t.astimezone(SV_TIME).replace(microsecond=0).isoformat()


def urgency(warning: MunicipalWarning, sent: datetime) -> str:
    """Immediate within 6 h of flooding, Expected within 48 h, else Future (CAP §3.2.2)."""
    onset = warning.onset
    if onset is None:
        return "Expected"
    hours = (onset - sent).total_seconds() / 3600
    return "Immediate" if hours <= 6 else "Expected" if hours <= 48 else "Future"


def certainty(warning: MunicipalWarning) -> str:
    """Likely above 50 % (a deterministic forecast counts as likely), else Possible."""
    p = warning.probability
    return "Likely" if p is None or p > 0.5 else "Possible"


def _polygons(area: BaseGeometry) -> list[str]:
    """CAP polygons ("lat,lon" pairs, closed) of an area, simplified to ~100 m."""
    shape = area.simplify(0.001, preserve_topology=True)
    parts = list(shape.geoms) if isinstance(shape, MultiPolygon) else [shape]
    rings = []
    for part in parts:
        if not isinstance(part, Polygon) or part.is_empty:
            continue
        coords = list(part.exterior.coords)
        if len(coords) < 4:
            continue
        rings.append(" ".join(f"{lat:.5f},{lon:.5f}" for lon, lat in coords))
    if not rings:
        raise InputError("a warning area needs at least one polygon.")
    return rings


def _texts(w: MunicipalWarning, lang: str, sent: datetime) -> dict[str, str]:
    name = LEVEL_NAMES[lang][w.level]
    lines = []
    for c in w.communities:
        when = (f"{c.hours_to_flooding:.0f} h" if c.hours_to_flooding is not None else "—")
        # The number is how many of this community's people go there, not the site's size.
        sent_word = "personas asignadas" if lang == "es" else "people assigned"
        shelters = ", ".join(f"{s} ({n} {sent_word})" for s, n in c.shelters)
        if lang == "es":
            line = (f"{c.name}: nivel {LEVEL_NAMES['es'][c.level]}, hasta {c.max_depth_m:.1f} m "
                    f"de agua, {c.people_exposed} personas expuestas, inundación en {when}")
            if shelters:
                line += f"; albergues: {shelters}"
            if c.unmet:
                line += f"; {c.unmet} personas sin albergue asignado"
        else:
            line = (f"{c.name}: level {LEVEL_NAMES['en'][c.level]}, up to {c.max_depth_m:.1f} m "
                    f"of water, {c.people_exposed} people exposed, flooding in {when}")
            if shelters:
                line += f"; shelters: {shelters}"
            if c.unmet:
                line += f"; {c.unmet} people without an assigned shelter"
        lines.append(line)
    # Pointing people to "the assigned shelters" when the plan found none would send them
    # looking for a place that does not exist.
    sheltered = any(c.shelters for c in w.communities)
    onset = w.onset
    left = ("" if onset is None else
            f" {(onset - sent).total_seconds() / 3600:.0f} h")
    if lang == "es":
        return {
            "event": "Inundación",
            "headline": f"Alerta {name} por inundación en {w.municipality}, {w.department}",
            "description": "Pronóstico de inundación. " + ". ".join(lines) + ".",
            "instruction": {
                "roja": (f"Evacuar ya a las personas de las zonas inundables hacia los albergues "
                         f"asignados; tiempo disponible:{left or ' desconocido'}." if sheltered
                         else "Evacuar ya a las personas de las zonas inundables hacia terreno "
                         "alto y seguro: ningún albergue habilitado tiene lugar asignado para "
                         "ellas; la comisión local y Protección Civil deben abrir uno. Tiempo "
                         f"disponible:{left or ' desconocido'}."),
                "naranja": ("Preparar la evacuación: activar la comisión local, avisar a la "
                            "población y alistar los albergues asignados." if sheltered
                            else "Preparar la evacuación: activar la comisión local, avisar a "
                            "la población y habilitar un sitio seguro: no hay albergue "
                            "asignado."),
                "amarilla": "Vigilar ríos y quebradas y mantenerse atentos a nuevos avisos.",
            }[w.level],
        }
    return {
        "event": "Flood",
        "headline": f"{name} flood warning for {w.municipality}, {w.department}",
        "description": "Flood forecast. " + ". ".join(lines) + ".",
        "instruction": {
            "roja": (f"Evacuate people from flood-prone areas to the assigned shelters now; time "
                     f"left:{left or ' unknown'}." if sheltered
                     else "Evacuate people from flood-prone areas to high, safe ground now: no "
                     "usable shelter has a place assigned to them; the local committee and Civil "
                     f"Protection must open one. Time left:{left or ' unknown'}."),
            "naranja": ("Prepare to evacuate: activate the local committee, warn people and "
                        "ready the assigned shelters." if sheltered
                        else "Prepare to evacuate: activate the local committee, warn people "
                        "and make a safe site ready: no shelter is assigned."),
            "amarilla": "Watch rivers and streams and stay alert for new warnings.",
        }[w.level],
    }


def _q(tag: str) -> str:
    return f"{{{CAP_NS}}}{tag}"


#: What an Exercise message says first (synthetic terrain or storm): nobody may take it for a
#: real warning.
EXERCISE_NOTE = ("SIMULACRO con datos SINTÉTICOS: no es una alerta real. / EXERCISE with "
                 "SYNTHETIC data: not a real warning.")


def cap_message(
    warning: MunicipalWarning | None,
    *,
    identifier: str,
    sender: str,
    sent: datetime,
    status: str,
    msg_type: str,
    references: tuple[tuple[str, str, datetime], ...] = (),
    cancelled: tuple[str, str] | None = None,
    note: str | None = None,
) -> bytes:
    """One CAP 1.2 alert message, UTF-8 XML, validated against the OASIS schema.

    ``msg_type`` Alert, Update (``references`` the messages it replaces) or Cancel (the
    danger has passed: an AllClear info block for ``cancelled`` = (municipality, department)
    and ``warning`` None). ``status`` Actual, or Exercise for synthetic terrain or storms.
    ``note`` (CAP 1.2 §3.2.1 ``note``) says what an Update changes. An Exercise says so
    where people read it, not only in ``status``: its note starts with
    :data:`EXERCISE_NOTE` and every headline with "SIMULACRO:" / "EXERCISE:".
    """
    if msg_type not in ("Alert", "Update", "Cancel"):
        raise InputError(f"CAP msgType {msg_type!r} unknown; use Alert, Update or Cancel.")
    if msg_type != "Alert" and not references:
        raise InputError(f"a CAP {msg_type} must reference the message it replaces.")
    ET.register_namespace("", CAP_NS)
    alert = ET.Element(_q("alert"))

    def sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
        el = ET.SubElement(parent, _q(tag))
        el.text = text
        return el

    sub(alert, "identifier", identifier)
    sub(alert, "sender", sender)
    sub(alert, "sent", cap_time(sent))
    sub(alert, "status", status)
    sub(alert, "msgType", msg_type)
    sub(alert, "scope", "Public")
    if status == "Exercise":
        note = EXERCISE_NOTE + (f" {note}" if note else "")
    if note:
        sub(alert, "note", note)
    if references:
        sub(alert, "references", " ".join(f"{s},{i},{cap_time(t)}" for s, i, t in references))
    exercise = ({"es": "SIMULACRO: ", "en": "EXERCISE: "} if status == "Exercise"
                else {"es": "", "en": ""})
    for lang, code in (("es", "es-SV"), ("en", "en-US")):
        info = ET.SubElement(alert, _q("info"))
        sub(info, "language", code)
        sub(info, "category", "Met")
        if warning is None:
            municipality, department = cancelled or ("", "")
            sub(info, "event", "Inundación" if lang == "es" else "Flood")
            sub(info, "responseType", "AllClear")
            sub(info, "urgency", "Past")
            sub(info, "severity", "Minor")
            sub(info, "certainty", "Observed")
            sub(info, "senderName", "floodwarn — Protección Civil" if lang == "es"
                else "floodwarn — Civil Protection")
            sub(info, "headline", exercise[lang] + (
                f"Fin de la alerta por inundación en {municipality}" if lang == "es"
                else f"Flood warning for {municipality} ended"))
            sub(info, "description", "El pronóstico ya no prevé inundación." if lang == "es"
                else "The forecast no longer expects flooding.")
            area = ET.SubElement(info, _q("area"))
            sub(area, "areaDesc", f"{municipality}, {department}")
            continue
        texts = _texts(warning, lang, sent)
        sub(info, "event", texts["event"])
        sub(info, "responseType", RESPONSE[warning.level])
        sub(info, "urgency", urgency(warning, sent))
        sub(info, "severity", SEVERITY[warning.level])
        sub(info, "certainty", certainty(warning))
        event_code = ET.SubElement(info, _q("eventCode"))
        sub(event_code, "valueName", "floodwarn:level")
        sub(event_code, "value", warning.level)
        if warning.onset is not None:
            sub(info, "onset", cap_time(warning.onset))
        sub(info, "expires", cap_time(warning.expires))
        sub(info, "senderName", "floodwarn — Protección Civil" if lang == "es"
            else "floodwarn — Civil Protection")
        sub(info, "headline", exercise[lang] + texts["headline"])
        sub(info, "description", texts["description"])
        sub(info, "instruction", texts["instruction"])
        if warning.probability is not None:
            parameter = ET.SubElement(info, _q("parameter"))
            sub(parameter, "valueName", "floodwarn:probability")
            sub(parameter, "value", f"{warning.probability:.2f}")
        area = ET.SubElement(info, _q("area"))
        sub(area, "areaDesc", f"{warning.municipality}, {warning.department}")
        for ring in _polygons(warning.area):
            sub(area, "polygon", ring)
        geocode = ET.SubElement(area, _q("geocode"))
        sub(geocode, "valueName", "geoBoundaries:ADM2")
        sub(geocode, "value", warning.municipality_id)
        geocode = ET.SubElement(area, _q("geocode"))
        sub(geocode, "valueName", "ISO3166-2")
        sub(geocode, "value", warning.department_code)
    xml = ET.tostring(alert, encoding="utf-8", xml_declaration=True)
    validate_cap(xml)
    return xml


@lru_cache(maxsize=1)
def _schema() -> Any:
    """The OASIS CAP 1.2 schema, parsed once."""
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(SCHEMA)))


def validate_cap(xml: bytes) -> None:
    """Raise InputError with the schema's complaint when ``xml`` is not valid CAP 1.2."""
    from lxml import etree

    try:
        doc = etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        raise InputError(f"CAP message is not well-formed XML: {exc}.") from exc
    schema = _schema()
    if not schema.validate(doc):
        raise InputError(f"CAP message invalid against CAP 1.2: {schema.error_log.last_error}")


def cap_info_fields(xml: str | bytes, *names: str) -> tuple[str, ...]:
    """Elements ``names`` (headline, instruction, onset, …) of a CAP message's first ``info``
    block (Spanish: written first), "" where absent."""
    from lxml import etree

    doc = etree.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml)
    return tuple(doc.findtext(f"{{{CAP_NS}}}info/{{{CAP_NS}}}{name}") or "" for name in names)


def cap_headline(xml: str | bytes) -> str:
    """The headline of a CAP message's first ``info`` block (Spanish: written first)."""
    return cap_info_fields(xml, "headline")[0]
