"""Flood inundation from HAND: synthetic rating curves, stage, depth and flooding time."""
