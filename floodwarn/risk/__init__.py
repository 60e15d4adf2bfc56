"""Flood risk of settlements and collective centres, and evacuation to safe centres."""
