"""The edge of floodwarn: files, formats, CRS and downloads (rasterio, geopandas, HTTP)."""
