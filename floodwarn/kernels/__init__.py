"""Numba kernels on plain numpy arrays: no I/O, no CRS, no xarray, no logging.

Each kernel cites the algorithm it implements. The raster-facing wrappers that validate input
and attach meaning (units, grids) live in :mod:`floodwarn.terrain`.
"""
