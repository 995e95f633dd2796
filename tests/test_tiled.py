"""The native tiled transforms compute exactly toomcook's XLA transforms, and fall back cleanly.

Every op (kin, kin_t, pout, pout_t) of both Toom schemes against the pure-XLA version on grids of
1-3 tiles per axis (all 16 boundary classes of the kernel's tables) and channel counts with and
without a vector tail; the pairs are adjoint; the layers built on them match the reference
convolutions; a missing or broken compiler leaves the pure-XLA path working.
"""
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan.models import downconv, native, tiled, toomcook, upconv

HAS_COMPILER = any(shutil.which(c) for c in ('g++', 'c++', 'clang++'))
needs_native = pytest.mark.skipif(not native.available(), reason='native kernels not built')
OPS = ('kin', 'kin_t', 'pout', 'pout_t')


def _input(op, s, g, c, seed=0):
  n, th, tw = g
  t, p, q = s.tile, s.points, s.sub
  shape = {'kin': (n, th * t, tw * t, c), 'kin_t': (p * p, n * th * tw, c),
           'pout': (p * p, n * th * tw, q * q * c), 'pout_t': (n, 2 * t * th, 2 * t * tw, c)}[op]
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def test_kernels_build_where_a_compiler_exists():
  """Without this the layers silently lose their speed, so CI must notice a broken build."""
  if not HAS_COMPILER:
    pytest.skip('no C++ compiler on this machine')
  assert native.available()


@needs_native
@pytest.mark.parametrize('scheme', ['toom2', 'toom4'])
@pytest.mark.parametrize('g', [(2, 1, 1), (1, 2, 3), (2, 3, 2)])
@pytest.mark.parametrize('c', [16, 35])
@pytest.mark.parametrize('op', OPS)
def test_native_op_matches_xla(op, scheme, g, c):
  s = toomcook.SCHEMES[scheme]
  x = _input(op, s, g, c)
  assert toomcook.use_native(op, s, x)
  got = jax.jit(lambda x: getattr(tiled, op)(s, g, x))(x)
  want = getattr(toomcook, op + '_xla')(scheme, g, x)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(want))))


@needs_native
@pytest.mark.parametrize('scheme', ['toom2', 'toom4'])
@pytest.mark.parametrize('pair', [('kin', 'kin_t'), ('pout', 'pout_t')])
def test_native_pairs_are_adjoint(scheme, pair):
  """<op(x), y> == <x, op_t(y)>: what the custom VJPs rely on."""
  s, g, c = toomcook.SCHEMES[scheme], (2, 2, 3), 24
  op, op_t = (getattr(tiled, name) for name in pair)
  x, y = _input(pair[0], s, g, c, seed=1), _input(pair[1], s, g, c, seed=2)
  lhs, rhs = jnp.vdot(op(s, g, x), y), jnp.vdot(x, op_t(s, g, y))
  np.testing.assert_allclose(lhs, rhs, rtol=1e-5)


def test_native_only_float32_cpu_toom_with_wide_runs():
  s4, gemm = toomcook.SCHEMES['toom4'], toomcook.SCHEMES['gemm']
  x = jnp.zeros((1, 4, 4, 32))
  assert toomcook.use_native('kin', s4, x) == native.available()
  assert not toomcook.use_native('kin', gemm, x)  # XLA fuses the GEMM scheme's copy / overlap-add
  assert not toomcook.use_native('kin', s4, x[..., :8])  # 8-float runs: XLA's loops win
  assert not toomcook.use_native('kin', s4, x.astype(jnp.bfloat16))
  # pout's runs are its output channels: the products hold Q*Q of them per row.
  assert not toomcook.use_native('pout', s4, jnp.zeros((25, 1, 4 * 8)))


@pytest.mark.parametrize('layer', ['up', 'down'])
def test_wide_layers_match_reference(layer):
  """Layers wide enough for the native path: outputs and both gradients against XLA's convs."""
  rng = np.random.default_rng(3)
  if layer == 'up':
    module, ref = upconv.UPSAMPLERS.get('fast')(24), upconv.UPSAMPLERS.get('conv_transpose')(24)
    x = rng.standard_normal((2, 8, 6, 20)).astype(np.float32)
  else:
    module, ref = downconv.DOWNSAMPLERS.get('fast')(24), downconv.DOWNSAMPLERS.get('conv')(24)
    x = rng.standard_normal((2, 16, 12, 20)).astype(np.float32)
  params = {'params': {'kernel': jnp.asarray(
      rng.standard_normal((4, 4, 20, 24)).astype(np.float32) * 0.1)}}

  def loss(m, params, x):
    return jnp.sum(jnp.tanh(m.apply(params, x)) ** 2)

  got = jax.jit(jax.value_and_grad(lambda p, x: loss(module, p, x), argnums=(0, 1)))(params, x)
  want = jax.value_and_grad(lambda p, x: loss(ref, p, x), argnums=(0, 1))(params, x)
  for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@needs_native
def test_vmap_over_native_op():
  s, g = toomcook.SCHEMES['toom2'], (1, 2, 2)
  xs = jnp.stack([_input('pout', s, g, 16, seed=i) for i in range(3)])
  got = jax.vmap(lambda x: tiled.pout(s, g, x))(xs)
  for i in range(3):
    np.testing.assert_allclose(got[i], toomcook.pout_xla('toom2', g, xs[i]), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not HAS_COMPILER, reason='no C++ compiler on this machine')
def test_build_is_cached(tmp_path):
  path = native.build(str(tmp_path))
  mtime = os.path.getmtime(path)
  assert native.build(str(tmp_path)) == path and os.path.getmtime(path) == mtime
  assert [f for f in os.listdir(tmp_path) if f.endswith('.so')] == [os.path.basename(path)]


# The layer must still compute the transposed convolution without the native kernels.
_FALLBACK = '''
import numpy as np, jax, jax.numpy as jnp
from gan.models import native, toomcook, upconv
assert not native.available()
x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 4, 4, 32)), jnp.float32)
assert not toomcook.use_native('kin', toomcook.SCHEMES['toom4'], x)
k = {'params': {'kernel': jnp.asarray(np.random.default_rng(1).standard_normal((4, 4, 32, 16)),
                                      jnp.float32)}}
got = upconv.UPSAMPLERS.get('fast')(16).apply(k, x)
want = upconv.UPSAMPLERS.get('conv_transpose')(16).apply(k, x)
np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
print('fallback ok')
'''


@pytest.mark.parametrize('how', ['disabled', 'broken_compiler'])
def test_fallback_without_native_kernels(how, tmp_path):
  env = dict(os.environ, PRODUCTGAN_CACHE=str(tmp_path), JAX_PLATFORMS='cpu')
  if how == 'disabled':
    env['PRODUCTGAN_NATIVE'] = '0'
  else:
    env['CXX'] = shutil.which('false')
  result = subprocess.run([sys.executable, '-c', _FALLBACK], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'fallback ok' in result.stdout
  if how == 'broken_compiler':
    assert 'native CPU kernels unavailable' in result.stderr


@pytest.mark.skipif(not HAS_COMPILER, reason='no C++ compiler on this machine')
def test_damaged_cached_library_is_rebuilt(tmp_path):
  """A truncated library in the cache is replaced, not loaded or kept forever."""
  path = native.build(str(tmp_path))
  with open(path, 'r+b') as f:
    f.truncate(100)
  code = ('from gan.models import native, tiled\n'
          'assert native.available()\n'
          'print(native.build())\n')
  env = dict(os.environ, PRODUCTGAN_CACHE=str(tmp_path), JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().splitlines()[-1] == path and os.path.getsize(path) > 100
