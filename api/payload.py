"""Bodies served many times unchanged (the map page, its libraries, boundaries, a run's reaches):
compressed once, tagged once, answered with 304 when the browser already has them."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import shapely
from fastapi import Request, Response

#: Below this size compression is not worth a header.
MIN_COMPRESSED_BYTES = 1024
#: Lines and polygons are drawn simplified: 0.0005° (≈ 55 m) is below what a screen shows at
#: the zooms the country is seen at; coordinates to 1e-5° (≈ 1 m).
SIMPLIFY_DEG = 0.0005
COORDINATE_GRID_DEG = 1e-5


@dataclass(frozen=True)
class Payload:
    """A body with its gzip form (when smaller) and an ETag of its content."""

    body: bytes
    media_type: str
    gzipped: bytes | None
    etag: str

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Payload:
        gzipped = None
        if len(body) >= MIN_COMPRESSED_BYTES:
            # mtime=0: the same body always gives the same bytes (and the same ETag).
            packed = gzip.compress(body, compresslevel=6, mtime=0)
            gzipped = packed if len(packed) < len(body) else None
        return cls(body, media_type, gzipped,
                   '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')

    def response(self, request: Request, *, cache_control: str) -> Response:
        """200 with the body (gzip when the client takes it), or 304 when the client's copy
        has this ETag."""
        headers = {"ETag": self.etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        if self.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            return Response(self.gzipped, media_type=self.media_type,
                            headers={**headers, "Content-Encoding": "gzip"})
        return Response(self.body, media_type=self.media_type, headers=headers)


def display_geojson(frame: Any, columns: list[str], *,
                    simplify_deg: float = SIMPLIFY_DEG) -> bytes:
    """``frame`` (lon/lat) as a GeoJSON FeatureCollection for a map: geometry simplified
    (Douglas & Peucker 1973, topology kept) and rounded to the coordinate grid, empty
    geometries dropped, names kept as UTF-8."""
    geometry = shapely.set_precision(
        shapely.simplify(frame.geometry.to_numpy(), simplify_deg, preserve_topology=True),
        COORDINATE_GRID_DEG)
    features = [{"type": "Feature", "properties": properties,
                 "geometry": json.loads(shapely.to_geojson(shape))}
                for properties, shape in zip(frame[columns].to_dict("records"), geometry,
                                             strict=True) if not shapely.is_empty(shape)]
    return json.dumps({"type": "FeatureCollection", "features": features},
                      ensure_ascii=False, separators=(",", ":")).encode()


#: How routes that answer a GeoJSON FeatureCollection document it in the OpenAPI schema.
GEOJSON_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"application/geo+json": {
    "schema": {"type": "object", "required": ["type", "features"],
               "properties": {"type": {"const": "FeatureCollection"},
                              "features": {"type": "array", "items": {"type": "object"}}}}}},
    "description": "GeoJSON FeatureCollection"}}
