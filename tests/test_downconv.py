"""Every downsampling implementation is the same function as PyTorch's Conv2d(4, 2, 1).

The reference ('conv') is checked against a direct numpy correlation in float64 and against flax's
nn.Conv; every other implementation against the reference: outputs, gradients w.r.t. input and
parameters, grad-of-grad (R1-style penalties need it), jit, vmap, and the parameter pytree.
Float32 tolerance: rtol = atol = 1e-4 on O(1) values.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan.models import downconv

TOL = dict(rtol=1e-4, atol=1e-4)
IMPLS = downconv.DOWNSAMPLERS.names()
# (N, H, W, Cin, features): odd sizes and channels; 17 input channels send 'fast' to Toom-Cook.
SHAPES = [(2, 5, 7, 3, 5), (1, 16, 9, 17, 4)]


def numpy_conv(x, kernel):
  """PyTorch Conv2d(k=4, s=2, p=1) by definition."""
  n, h, w, _ = x.shape
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  ho, wo = h // 2, w // 2
  y = np.zeros((n, ho, wo, kernel.shape[-1]))
  for kh in range(4):
    for kw in range(4):
      y += np.einsum('nhwc,cd->nhwd', xp[:, kh:kh + 2 * ho:2, kw:kw + 2 * wo:2], kernel[kh, kw])
  return y


def _data(shape, seed=0):
  n, h, w, cin, cout = shape
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
  kernel = rng.standard_normal((4, 4, cin, cout)).astype(np.float32)
  cot = rng.standard_normal((n, h // 2, w // 2, cout)).astype(np.float32)
  return x, kernel, cot


def _params(kernel, bias=None):
  p = {'kernel': jnp.asarray(kernel)}
  if bias is not None:
    p['bias'] = jnp.asarray(bias)
  return {'params': p}


def test_registry_and_default():
  assert {'conv', downconv.DEFAULT_DOWNSAMPLER} <= set(IMPLS)
  with pytest.raises(ValueError, match='Valid downsampling implementation names'):
    downconv.DOWNSAMPLERS.get('nope')


@pytest.mark.parametrize('shape', SHAPES)
def test_reference_is_pytorch_semantics(shape):
  x, kernel, _ = _data(shape)
  y = downconv.DOWNSAMPLERS.get('conv')(shape[-1]).apply(_params(kernel), x)
  np.testing.assert_allclose(y, numpy_conv(x.astype(np.float64), kernel.astype(np.float64)), **TOL)
  flax_conv = nn.Conv(shape[-1], (4, 4), (2, 2), padding=((1, 1), (1, 1)), use_bias=False)
  np.testing.assert_allclose(flax_conv.apply(_params(kernel), x), y, **TOL)


@pytest.mark.parametrize('name', IMPLS)
@pytest.mark.parametrize('shape', SHAPES)
def test_outputs_and_gradients_match_reference(name, shape):
  x, kernel, cot = _data(shape)
  bias = np.linspace(-1, 1, shape[-1]).astype(np.float32)

  def run(impl):
    module = downconv.DOWNSAMPLERS.get(impl)(shape[-1], use_bias=True)
    loss = lambda p, x: jnp.vdot(module.apply(p, x), cot)
    y = jax.jit(module.apply)(_params(kernel, bias), x)
    grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(_params(kernel, bias), x)
    return y, grads

  (y_ref, (gp_ref, gx_ref)), (y, (gp, gx)) = run('conv'), run(name)
  np.testing.assert_allclose(y, y_ref, **TOL)
  np.testing.assert_allclose(gx, gx_ref, **TOL)
  np.testing.assert_allclose(gp['params']['kernel'], gp_ref['params']['kernel'], **TOL)
  np.testing.assert_allclose(gp['params']['bias'], gp_ref['params']['bias'], **TOL)


@pytest.mark.parametrize('name', IMPLS)
def test_same_parameter_pytree(name):
  x = jnp.zeros((1, 4, 5, 6))
  key = jax.random.PRNGKey(0)
  for use_bias in (False, True):
    ref = jax.eval_shape(downconv.DOWNSAMPLERS.get('conv')(7, use_bias=use_bias).init, key, x)
    got = jax.eval_shape(downconv.DOWNSAMPLERS.get(name)(7, use_bias=use_bias).init, key, x)
    assert jax.tree.map(lambda a: (a.shape, a.dtype), got) == jax.tree.map(lambda a: (a.shape, a.dtype), ref)
  assert got['params']['kernel'].shape == (4, 4, 6, 7) and got['params']['bias'].shape == (7,)
  flax_conv = nn.Conv(7, (4, 4), (2, 2), padding=((1, 1), (1, 1)))
  assert jax.tree.map(jnp.shape, jax.eval_shape(flax_conv.init, key, x)) == jax.tree.map(jnp.shape, got)


def test_same_initial_values():
  x, key = jnp.zeros((1, 2, 3, 6)), jax.random.PRNGKey(0)
  init = lambda impl: downconv.DOWNSAMPLERS.get(impl)(7).init(key, x)['params']['kernel']
  np.testing.assert_array_equal(init(downconv.DEFAULT_DOWNSAMPLER), init('conv'))


@pytest.mark.parametrize('name', [n for n in IMPLS if n != 'conv'])
def test_r1_style_grad_of_grad_matches_reference(name):
  """d/dkernel of ||d D(x) / dx||^2, as an R1 penalty computes it, through the custom VJPs."""
  x, kernel, cot = _data((1, 8, 6, 18, 3), seed=1)

  def penalty(impl, kernel):
    module = downconv.DOWNSAMPLERS.get(impl)(3)
    gx = jax.grad(lambda x: jnp.vdot(jnp.tanh(module.apply(_params(kernel), x)), cot))(x)
    return jnp.sum(gx ** 2)

  second = jax.jit(jax.grad(penalty, argnums=1), static_argnums=0)
  ref = second('conv', kernel)
  # A second derivative amplifies float32 round-off: Toom-4's transforms (~1e-7 relative error
  # each, whether XLA or the native kernel runs them) leave up to ~1.5e-4 of the largest entry
  # here, so the absolute tolerance scales with it; a wrong VJP is off by O(1) of it.
  atol = 1e-3 + 3e-4 * float(jnp.max(jnp.abs(ref)))
  np.testing.assert_allclose(second(name, kernel), ref, rtol=1e-3, atol=atol)


@pytest.mark.parametrize('name', IMPLS)
def test_vmap_over_extra_axis(name):
  x, kernel, _ = _data((2, 6, 4, 2, 3), seed=2)
  module = downconv.DOWNSAMPLERS.get(name)(3)
  xs = np.stack([x, -2 * x])
  got = jax.jit(jax.vmap(lambda x: module.apply(_params(kernel), x)))(xs)
  np.testing.assert_allclose(got[1], module.apply(_params(kernel), xs[1]), **TOL)
  np.testing.assert_allclose(got[0], -0.5 * got[1], **TOL)


def test_choose_scheme_dcgan_shapes():
  assert downconv.choose_scheme(64, 64, 3, 64) == 'gemm'  # the RGB layer
  for h, cin, cout in [(32, 64, 128), (16, 128, 256), (8, 256, 512)]:
    assert downconv.choose_scheme(h, h, cin, cout) in ('toom2', 'toom4')


@pytest.mark.parametrize('bad', [np.zeros((3, 4, 5), np.float32), np.zeros((1, 4, 4, 3), np.int32),
                                 np.zeros((1, 1, 4, 3), np.float32)])
def test_bad_input_is_a_clear_error(bad):
  with pytest.raises(ValueError, match='NHWC|floating|height and width'):
    downconv.DOWNSAMPLERS.get(downconv.DEFAULT_DOWNSAMPLER)(4).init(jax.random.PRNGKey(0), bad)


@pytest.mark.parametrize('scheme', ['gemm', 'toom2', 'toom4'])
def test_batch_chunks_match_reference(scheme):
  x, kernel, cot = _data((4, 9, 8, 3, 6), seed=3)
  loss = lambda f: lambda x, k: jnp.vdot(f(x, k), cot)
  chunked = jax.jit(jax.value_and_grad(loss(lambda x, k: downconv.fast_conv(x, k, scheme, chunks=2)),
                                       argnums=(0, 1)))
  reference = jax.value_and_grad(loss(downconv.conv_reference), argnums=(0, 1))
  (v, (gx, gk)), (v_ref, (gx_ref, gk_ref)) = chunked(x, kernel), reference(x, kernel)
  np.testing.assert_allclose(v, v_ref, rtol=1e-4)
  np.testing.assert_allclose(gx, gx_ref, **TOL)
  np.testing.assert_allclose(gk, gk_ref, **TOL)
