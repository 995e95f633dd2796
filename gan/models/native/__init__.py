"""Builds, caches and loads the project's C++ XLA FFI kernels (CPU only).

The kernels are compiled on first use for the machine that runs them (`-march=native`) with the
system C++ compiler against the XLA FFI headers that jaxlib ships, and cached under
$PRODUCTGAN_CACHE (default ~/.cache/productgan) by a hash of the source, compiler, flags, jaxlib
version and CPU, so a later process only loads the library. Without a compiler, or if the build or
load fails, `load()` returns None once with a warning and callers keep their pure-XLA code path:
the kernels are a speed choice, never a requirement. PRODUCTGAN_NATIVE=0 turns them off.
"""
import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from typing import Optional

import jax
import jaxlib.version

_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tiled_transform.cc')
_FLAGS = ('-O3', '-march=native', '-std=c++17', '-shared', '-fPIC')
# FFI targets this library exports, registered for the CPU platform under these names.
TARGETS = {'productgan_tiled_transform': 'TiledTransform'}


def cache_dir() -> str:
  return os.environ.get('PRODUCTGAN_CACHE') or os.path.join(
      os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'productgan')


def _compiler() -> Optional[str]:
  for name in (os.environ.get('CXX'), 'g++', 'c++', 'clang++'):
    path = shutil.which(name) if name else None
    if path:
      return path
  return None


def _cpu_signature() -> str:
  """What -march=native depends on: the CPU's model and feature flags."""
  try:
    with open('/proc/cpuinfo') as f:
      lines = [l for l in f if l.startswith(('model name', 'flags', 'Features', 'CPU part'))]
    return ''.join(sorted(set(lines)))
  except OSError:
    return platform.processor()


def _library_key(compiler: str) -> str:
  version = subprocess.run([compiler, '--version'], capture_output=True, text=True,
                           check=False).stdout
  with open(_SOURCE, 'rb') as f:
    source = f.read()
  h = hashlib.sha256(source)
  for part in (compiler, version, ' '.join(_FLAGS), jax.ffi.include_dir(), _cpu_signature(),
               platform.machine(), jax.__version__, jaxlib.version.__version__):
    h.update(part.encode())
  return h.hexdigest()[:16]


def build(out_dir: Optional[str] = None) -> str:
  """Compiles the kernels (or finds them in the cache); returns the shared library's path.

  Raises RuntimeError with the compiler's message when there is no compiler or the build fails.
  """
  compiler = _compiler()
  if compiler is None:
    raise RuntimeError('no C++ compiler found (looked for $CXX, g++, c++, clang++)')
  out_dir = out_dir or cache_dir()
  path = os.path.join(out_dir, f'productgan_kernels_{_library_key(compiler)}.so')
  if os.path.exists(path):
    return path
  os.makedirs(out_dir, exist_ok=True)
  # Build to a private name, then rename: concurrent processes never see half a library.
  fd, tmp = tempfile.mkstemp(suffix='.so', dir=out_dir)
  os.close(fd)
  cmd = [compiler, *_FLAGS, '-I', jax.ffi.include_dir(), _SOURCE, '-o', tmp]
  result = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if result.returncode != 0:
    os.unlink(tmp)
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{result.stderr[-2000:]}')
  os.replace(tmp, path)
  return path


@functools.lru_cache(maxsize=None)
def load() -> Optional[ctypes.CDLL]:
  """The loaded library with its FFI targets registered, or None (pure-XLA fallback)."""
  if os.environ.get('PRODUCTGAN_NATIVE', '1') == '0':
    return None
  try:
    try:
      path = build()
    except OSError:  # e.g. a read-only home directory
      path = build(os.path.join(tempfile.gettempdir(), f'productgan-{os.getuid()}'))
    try:
      lib = ctypes.cdll.LoadLibrary(path)
    except OSError:  # a damaged cache entry (e.g. a disk that filled up): build it again
      os.unlink(path)
      lib = ctypes.cdll.LoadLibrary(build(os.path.dirname(path)))
    for target, symbol in TARGETS.items():
      jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, symbol)), platform='cpu')
    return lib
  except Exception as e:  # pylint: disable=broad-except
    logging.warning('productgan: native CPU kernels unavailable, using the (slower) pure-XLA '
                    'transforms instead: %s', e)
    return None


def available() -> bool:
  return load() is not None
