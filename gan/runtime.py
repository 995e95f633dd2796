"""Process-level tuning applied once at start-up, before JAX allocates anything."""
import ctypes
import sys

from absl import logging

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def tune_malloc() -> bool:
  """Keeps freed buffers in the heap (glibc) so multi-MB temporaries are not page-faulted in again
  on every step: a 38 MB element-wise op took 28 ms with the defaults and 3 ms with this on our CPU
  machine. Returns False where it does not apply (not glibc)."""
  if not sys.platform.startswith('linux'):
    return False
  try:
    libc = ctypes.CDLL('libc.so.6')
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1) == 1
  except (OSError, AttributeError):
    return False
  if not ok:
    logging.warning('mallopt failed; keeping the default allocator settings.')
  return ok
