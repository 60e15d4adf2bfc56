"""Analytical hillshade of an elevation grid: the grey relief the analysts' map draws under
the flood layers (the service has no internet base map).

Plain arrays in and out, no I/O: :mod:`api.tiles` reads the terrain model's conditioned DEM
and writes the result as a Cloud Optimized GeoTIFF.
"""

from __future__ import annotations

import numpy as np

from floodwarn.errors import InputError

#: Standard cartographic illumination: from the north-west (azimuth 315°, clockwise from
#: north), 45° above the horizon — light from the upper left, which readers see as relief
#: rather than as inverted valleys (Imhof 1982, *Cartographic Relief Presentation*, ch. 12).
SUN_AZIMUTH_DEG = 315.0
SUN_ALTITUDE_DEG = 45.0


def hillshade(elevation: np.ndarray, cellsize_x: float, cellsize_y: float | None = None, *,
              azimuth_deg: float = SUN_AZIMUTH_DEG, altitude_deg: float = SUN_ALTITUDE_DEG,
              z_factor: float = 1.0) -> np.ndarray:
    """Illumination in [0, 1] of each cell of a north-up ``elevation`` grid (rows run south)
    lit by a distant sun; NaN where the elevation is NaN.

    The surface gradient is Horn's (1981) 3×3 weighted finite difference::

        a b c      ∂z/∂x (east)  = ((c + 2f + i) − (a + 2d + g)) / (8 Δx)
        d e f      ∂z/∂y (north) = ((a + 2b + c) − (g + 2h + i)) / (8 Δy)
        g h i

    and the illumination is the cosine of the angle between the surface normal
    (−∂z/∂x, −∂z/∂y, 1)/‖·‖ and the direction to the sun (sin A cos h, cos A cos h, sin h),
    A the azimuth clockwise from north and h the altitude, clipped at 0 (self-shadow):
    Lambertian reflectance, Horn's eq. for the reflectance map with a point source at
    infinity. This is the same formula as ESRI's and GDAL's ``gdaldem hillshade``
    (Burrough & McDonnell 1998): a flat cell gives sin h (0.707 for h = 45°).

    At the grid edge and next to NaN cells, the missing neighbour takes the centre cell's
    elevation (the gradient is then one-sided), so valid cells never turn NaN.

    Parameters
    ----------
    elevation : 2-D array of elevations (m), NaN for nodata.
    cellsize_x, cellsize_y : cell width and height in the elevation's units (m); square
        cells when ``cellsize_y`` is None.
    azimuth_deg, altitude_deg : direction of the sun.
    z_factor : vertical exaggeration.

    References
    ----------
    Horn, B.K.P. (1981) Hill shading and the reflectance map. Proc. IEEE 69(1), 14–47.
    Burrough, P.A., McDonnell, R.A. (1998) Principles of Geographical Information Systems,
    2nd ed., Oxford University Press, 190–193.
    """
    z = np.asarray(elevation)
    if z.ndim != 2:
        raise InputError(f"hillshade needs a 2-D elevation grid, got shape {z.shape}.")
    cellsize_y = cellsize_x if cellsize_y is None else cellsize_y
    if not (cellsize_x > 0 and cellsize_y > 0):
        raise InputError(f"hillshade needs positive cell sizes, got {cellsize_x} × "
                         f"{cellsize_y}.")
    if not 0.0 <= altitude_deg <= 90.0:
        raise InputError(f"the sun's altitude must be within 0–90°, got {altitude_deg}.")
    # float32: its 24-bit mantissa resolves 0.2 mm at 3000 m, far below any relief a 90 m
    # shade can show, at half the memory of float64.
    centre = z.astype(np.float32) * np.float32(z_factor)
    padded = np.pad(centre, 1, mode="edge")
    rows, cols = centre.shape
    # Horn's weights of the eight neighbours (row offset, column offset) in ∂z/∂x (east) and
    # ∂z/∂y (north; rows run south). Summed one neighbour at a time, so that no more than
    # one neighbour grid is held at once.
    weights = {(-1, -1): (-1, 1), (-1, 0): (0, 2), (-1, 1): (1, 1), (0, -1): (-2, 0),
               (0, 1): (2, 0), (1, -1): (-1, -1), (1, 0): (0, -2), (1, 1): (1, -1)}
    dz_dx = np.zeros_like(centre)
    dz_dy = np.zeros_like(centre)
    missing = np.isnan(centre)
    for (dr, dc), (wx, wy) in weights.items():
        view = padded[1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols]
        value = np.where(np.isnan(view), centre, view)  # a NaN neighbour: the centre's value
        if wx:
            dz_dx += np.float32(wx) * value
        if wy:
            dz_dy += np.float32(wy) * value
    dz_dx /= np.float32(8 * cellsize_x)
    dz_dy /= np.float32(8 * cellsize_y)
    azimuth, altitude = np.radians(azimuth_deg), np.radians(altitude_deg)
    sun_x = np.float32(np.sin(azimuth) * np.cos(altitude))
    sun_y = np.float32(np.cos(azimuth) * np.cos(altitude))
    sun_z = np.float32(np.sin(altitude))
    shade = (sun_z - sun_x * dz_dx - sun_y * dz_dy) / np.sqrt(1 + dz_dx**2 + dz_dy**2)
    shade = np.clip(shade, 0.0, 1.0)
    shade[missing] = np.nan  # its neighbours gave a NaN cell a gradient
    return shade


def hillshade_bytes(elevation: np.ndarray, cellsize_x: float, cellsize_y: float | None = None,
                    *, rows_per_block: int = 256, **sun: float) -> np.ndarray:
    """:func:`shade_bytes` of :func:`hillshade`, computed a block of rows at a time with a
    one-row halo, so a country-size grid needs tens of MB beyond its input and output rather
    than the ~0.2 GB of temporaries of the whole grid at once. Identical to the whole-grid
    result: each block's halo rows give its edge rows their true neighbours and are then
    dropped."""
    z = np.asarray(elevation)
    if z.ndim != 2:
        raise InputError(f"hillshade needs a 2-D elevation grid, got shape {z.shape}.")
    rows = z.shape[0]
    grey = np.empty(z.shape, np.uint8)
    for start in range(0, rows, rows_per_block):
        stop = min(start + rows_per_block, rows)
        top, bottom = max(start - 1, 0), min(stop + 1, rows)
        block = hillshade(z[top:bottom], cellsize_x, cellsize_y, **sun)
        grey[start:stop] = shade_bytes(block[start - top:start - top + stop - start])
    return grey


def shade_bytes(shade: np.ndarray) -> np.ndarray:
    """Illumination in [0, 1] as uint8 grey levels 1 + 254·shade (1…255), 0 where ``shade``
    is NaN: 0 is left free as the nodata value of the stored raster, so a black cliff face is
    1, not a hole in the map. The scaling is GDAL's ``gdaldem hillshade`` (a flat cell under a
    45° sun: 1 + 254 · 0.707 ≈ 181)."""
    grey = np.rint(1 + np.nan_to_num(shade, nan=0.0) * 254).astype(np.uint8)
    grey[np.isnan(shade)] = 0
    return grey
