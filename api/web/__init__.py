"""The analysts' map page and the front-end assets it ships with (``static/``): served by the
service with no internet (no CDN, no tile server). ``static/vendor`` holds the npm libraries at
the versions pinned in ``package.json`` (re-vendored by ``vendor.sh``)."""
