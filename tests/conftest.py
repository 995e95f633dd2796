"""Tests run on 8 forced CPU devices so pmap sharding is exercised (set before jax is imported).

Also on a GPU machine: the suite's batches are shaped for those 8 devices, and the fast CPU layers
are what the layer tests check (on a GPU they fall back to XLA's convolutions).
"""
import ctypes
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile

# Tiny tests spend their time compiling, not running: XLA's backend optimisation (LLVM) off
# halves a tiny training run's compile (38 s -> 22 s on 2 cores). The gan.* processes that tests
# start get the same flags (tool_env).
FAST_COMPILE = '--xla_backend_optimization_level=0'


def xla_flags(devices: int) -> str:
  return f'--xla_force_host_platform_device_count={devices} {FAST_COMPILE}'


os.environ.setdefault('XLA_FLAGS', xla_flags(8))
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Compiling, not running, is most of a tiny test's time, and many tests (and the gan.* processes
# they start, which inherit this) compile the same programs. One persistent compilation cache per
# test session, shared by the xdist workers (set here, before they start); empty at the start,
# so nothing carries over from an older run.
_OWN_CACHE = None
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _OWN_CACHE = tempfile.mkdtemp(prefix='productgan-test-jax-cache-')
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _OWN_CACHE
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
  os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '0'

import pytest  # noqa: E402

from configs import default  # noqa: E402


def tiny_config(**overrides):
  """A config small enough to train a few steps in seconds on 2 CPU cores."""
  c = default.get_config()
  c.data.name = 'synthetic_products/tiny'
  c.data.resolution = 16
  c.data.shuffle_buffer = 128
  c.batch_size = 16
  c.model.g_width = 8
  c.model.d_width = 8
  c.model.embed_dim = 8
  c.model.latent_dim = 16
  c.num_train_steps = 4
  c.log_every_steps = 2
  c.sample_every_steps = 2
  c.checkpoint_every_steps = 2
  c.sample.standing_stats_batches = 1
  for key, value in overrides.items():
    target = c
    *path, last = key.split('.')
    for p in path:
      target = target[p]
    target[last] = value
  return c


def pytest_unconfigure(config):
  if _OWN_CACHE:
    shutil.rmtree(_OWN_CACHE, ignore_errors=True)


def _build_once(tmp_path_factory, name, build):
  """`build(path)` once per test session, shared by every pytest-xdist worker.

  The workers share the parent of their temp directories: the first one to get there builds
  (under a file lock), the others reuse what it built. Tests only read it (copy it to change it).
  """
  shared = tmp_path_factory.getbasetemp()
  if os.environ.get('PYTEST_XDIST_WORKER'):
    shared = shared.parent
  path = shared / name
  with open(shared / f'{name}.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      if not (shared / f'{name}.done').exists():
        shutil.rmtree(path, ignore_errors=True)  # A worker that died half-way.
        build(str(path))
        (shared / f'{name}.done').touch()
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
  return str(path)


@pytest.fixture(scope='session')
def tfds_dir(tmp_path_factory):
  """One TFDS data dir, with synthetic_products/tiny built once."""
  def build(data_dir):
    import tensorflow_datasets as tfds
    import gan.data  # noqa: F401
    tfds.builder('synthetic_products/tiny', data_dir=data_dir).download_and_prepare()
  return _build_once(tmp_path_factory, 'tfds', build)


@pytest.fixture(scope='session')
def trained_run_dir(tfds_dir, tmp_path_factory):
  """One tiny trained run (checkpoints at steps 2 and 4), trained once per test session."""
  def build(workdir):
    from gan import train
    config = tiny_config(**{'data.data_dir': tfds_dir, 'num_train_steps': 4,
                            'sample_every_steps': 0})
    train.train_and_evaluate(config, workdir)
  return _build_once(tmp_path_factory, 'control_run', build)


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _drop_root_file_access():
  """In the child, before exec: root loses the capabilities that bypass file permissions."""
  libc = ctypes.CDLL(None, use_errno=True)
  for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
      raise OSError(ctypes.get_errno(), 'prctl(PR_CAPBSET_DROP)')


def tool_env(devices: int) -> dict:
  """The environment of a `python -m gan.*` process started by a test: `devices` CPU devices,
  and this checkout importable (config files import tests.conftest)."""
  return dict(os.environ, XLA_FLAGS=xla_flags(devices),
              PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))


def run_tool(args, devices=2, timeout=300, respect_permissions=False, unset=(), **kwargs):
  """Runs `python ARGS` (e.g. ['-m', 'gan.sample', ...]) from the repo like a user would.

  respect_permissions: as root (CI runs as root), file modes do not stop reads or writes; this
  drops root's permission-bypassing capabilities in the child, so chmod'ed folders behave as
  they would for any other user.
  unset: environment variables the tool must not see (e.g. this file's TF_CPP_MIN_LOG_LEVEL).
  """
  env = {k: v for k, v in tool_env(devices).items() if k not in unset}
  preexec = _drop_root_file_access if respect_permissions and os.geteuid() == 0 else None
  return subprocess.run([sys.executable] + list(args), cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=timeout, preexec_fn=preexec, **kwargs)


def assert_clean_error(proc, code, *words):
  """The tool exited with `code`, printed each of `words`, and showed no traceback."""
  output = proc.stdout + proc.stderr
  assert proc.returncode == code, f'exit {proc.returncode}, expected {code}:\n{output[-4000:]}'
  for word in words:
    assert word in proc.stderr, f'{word!r} not in stderr:\n{proc.stderr[-4000:]}'
  assert 'Traceback' not in output, output[-4000:]
