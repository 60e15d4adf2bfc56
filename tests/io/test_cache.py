"""The array cache: round trip, no cache, and a corrupt entry made again."""

import numpy as np

from floodwarn.io.cache import ArrayCache


def test_round_trip_and_disabled_cache(tmp_path):
    cache = ArrayCache(tmp_path / "c")
    assert cache.load("weights", "abc") is None
    cache.save("weights", "abc", {"q": np.arange(5.0)})
    np.testing.assert_array_equal(cache.load("weights", "abc")["q"], np.arange(5.0))
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["weights_abc.npz"]
    off = ArrayCache(None)
    off.save("weights", "abc", {"q": np.arange(5.0)})
    assert off.load("weights", "abc") is None


def test_corrupt_entry_is_ignored(tmp_path):
    cache = ArrayCache(tmp_path)
    (tmp_path / "thresholds_k.npz").write_bytes(b"not a zip file")
    assert cache.load("thresholds", "k") is None
    cache.save("thresholds", "k", {"q": np.ones(2)})
    assert cache.load("thresholds", "k")["q"].tolist() == [1.0, 1.0]
