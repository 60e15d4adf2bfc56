"""floodwarn: flood early warning and risk modelling for El Salvador.

Start reading at :mod:`floodwarn.pipeline`, which shows the model chain in order.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("floodwarn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
