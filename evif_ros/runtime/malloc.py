"""glibc's allocator tuned for a model that reuses the same large buffers every frame.

By default glibc hands a freed block of over 128 KiB (raised dynamically up to 32 MiB) back
to the kernel, and trims an arena's top once it holds more than twice that; the next frame
then page-faults the same memory in again, zero-filled. A forward pass of the shipped model
allocates and frees a few hundred MiB in 1-6 MiB tensors, so on this CPU the faults cost
20-60 % of the model's time, and more in a worker thread (its arena is trimmed more
eagerly) than in the benchmark's main thread. Keeping freed memory mapped makes the node's
model as fast as the standalone benchmark; the process keeps its peak working set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 1 << 30  # never trim below 1 GiB of free top


def retain_freed_memory() -> bool:
    """Blocks up to 32 MiB come from the heap and freed memory stays mapped (up to 1 GiB
    free at an arena's top). Returns whether glibc took both settings; a no-op elsewhere
    (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) \
        and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
