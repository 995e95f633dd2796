"""JAX's persistent compilation cache for the studio: compiled programs kept on disk between starts.

A start compiles a dozen programs (each batch size, interpolation, inversion); with the cache, the
next start of the same model loads them instead. Default folder: the user's cache directory
($XDG_CACHE_HOME or ~/.cache)/productgan/jax, or $JAX_COMPILATION_CACHE_DIR when that is set.
Enable it before anything is compiled: JAX reads the setting once, at its first compilation.
"""
import os
from typing import Optional

import jax

DISABLED = ('none', 'off', '')


def default_dir() -> str:
  if os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    return os.environ['JAX_COMPILATION_CACHE_DIR']
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'productgan', 'jax')


def enable(directory: Optional[str]) -> Optional[str]:
  """Caches every compiled program (however quick to compile) in `directory`; None/'none': off.
  Returns the folder used, or None."""
  if directory is None or directory.strip().lower() in DISABLED:
    jax.config.update('jax_enable_compilation_cache', False)
    return None
  directory = os.path.abspath(os.path.expanduser(directory))
  os.makedirs(directory, exist_ok=True)
  jax.config.update('jax_enable_compilation_cache', True)
  jax.config.update('jax_compilation_cache_dir', directory)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  return directory


def entries(directory: Optional[str]) -> int:
  """How many compiled programs the folder holds (0 when off or missing)."""
  if not directory or not os.path.isdir(directory):
    return 0
  return sum(1 for name in os.listdir(directory) if not name.startswith('.'))
