"""Rainfall forecasts: canonical form, storm generator (readers live in floodwarn.io.rainfall)."""

from floodwarn.rainfall.forecast import RainfallForecast, RawRainfall, canonical_forecast

__all__ = ["RainfallForecast", "RawRainfall", "canonical_forecast"]
