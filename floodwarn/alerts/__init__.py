"""Warnings out: CAP 1.2 messages per municipality and their lifecycle (alert, update, cancel)."""
