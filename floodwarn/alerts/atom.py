"""An Atom feed of the CAP alerts in force, as CAP aggregators (alert hubs) read it.

References
----------
IETF RFC 4287 (2005) The Atom Syndication Format. OASIS (2010) CAP 1.2, and the alert-hub
practice of one Atom entry per CAP message linking to it (``application/cap+xml``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from floodwarn.alerts.cap import LEVEL_NAMES, cap_time

ATOM_NS = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class FeedEntry:
    identifier: str  # the CAP identifier
    title: str  # the Spanish headline
    summary: str
    updated: datetime
    cap_url: str  # where the CAP XML is served
    area: str  # the municipality id (a category term readers can filter on)
    area_name: str | None = None  # its official name and department, as people read it


def entry_summary(level: str, place: str) -> str:
    """An entry's summary: the level, Spanish first, then the place as people name it, e.g.
    "Alerta roja (red alert) — Aguilares, San Salvador"."""
    spanish, english = LEVEL_NAMES["es"][level].lower(), LEVEL_NAMES["en"][level].lower()
    return f"Alerta {spanish} ({english} alert) — {place}"


def atom_feed(entries: list[FeedEntry], *, feed_id: str, self_url: str, title: str,
              updated: datetime) -> bytes:
    """The feed document (UTF-8 XML), newest entry first."""
    ET.register_namespace("", ATOM_NS)

    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            node.text = text
        return node

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    el(feed, "id", feed_id)
    el(feed, "title", title)
    el(feed, "updated", cap_time(updated))
    el(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    author = el(feed, "author")
    el(author, "name", "floodwarn — Protección Civil de El Salvador")
    for entry in sorted(entries, key=lambda e: e.updated, reverse=True):
        node = el(feed, "entry")
        el(node, "id", f"urn:floodwarn:cap:{entry.identifier}")
        el(node, "title", entry.title)
        el(node, "updated", cap_time(entry.updated))
        el(node, "summary", entry.summary)
        if entry.area_name:
            el(node, "category", term=entry.area, label=entry.area_name)
        else:
            el(node, "category", term=entry.area)
        el(node, "link", rel="alternate", href=entry.cap_url, type="application/cap+xml")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
