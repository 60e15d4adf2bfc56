"""River hydrology: rain on catchments, runoff, routing, return-period thresholds."""
