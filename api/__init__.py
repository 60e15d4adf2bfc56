"""floodwarn's alert service: store, runs, CAP alerts, Atom feed, committee webhooks, API.

Depends on :mod:`floodwarn`; floodwarn never imports it.
"""
