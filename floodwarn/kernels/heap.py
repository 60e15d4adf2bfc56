"""A 4-ary min-heap of 64-bit keys that sort by elevation, then by cell: the priority queue of
the Priority-Flood family (depression filling, least-cost drainage, lake basins).

Keys are ``sortable_key(float32 bits) << 32 | cell``: popping the smallest key gives the lowest
cell, ties broken by index, with integer comparisons only.

References
----------
Barnes, R., Lehman, C. & Mulla, D. (2014) Priority-Flood: an optimal depression-filling and
watershed-labeling algorithm for digital elevation models. Computers & Geosciences 62, 117-127.
Knuth, D.E. (1998) The Art of Computer Programming vol. 3, §5.2.3 (heaps; d-ary heaps).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def sortable_key(bits: np.uint32) -> np.uint64:
    """Map float32 bit patterns to unsigned integers that sort like the floats."""
    if bits & np.uint32(0x80000000):
        return np.uint64(~bits & np.uint32(0xFFFFFFFF))
    return np.uint64(bits | np.uint32(0x80000000))


@njit(cache=True, inline="always")
def heap_sift_down(heap: np.ndarray, size: int, pos: int, key: np.uint64) -> None:
    """Place ``key`` at ``pos`` of a 4-ary min-heap and move it down to its place.

    A 4-ary heap is half as deep as a binary one and its four children share a cache line.
    """
    while True:
        first = 4 * pos + 1
        if first >= size:
            break
        best = first
        best_key = heap[first]
        last = min(first + 4, size)
        for child in range(first + 1, last):
            if heap[child] < best_key:
                best = child
                best_key = heap[child]
        if best_key >= key:
            break
        heap[pos] = best_key
        pos = best
    heap[pos] = key


@njit(cache=True, inline="always")
def heap_push(heap: np.ndarray, size: int, key: np.uint64) -> np.ndarray:
    """Push ``key`` on a 4-ary min-heap holding ``size`` keys; returns the (maybe grown) heap."""
    if size == heap.shape[0]:
        bigger = np.empty(2 * size, np.uint64)
        bigger[:size] = heap
        heap = bigger
    pos = size
    while pos > 0:
        parent = (pos - 1) >> 2
        if heap[parent] <= key:
            break
        heap[pos] = heap[parent]
        pos = parent
    heap[pos] = key
    return heap
