"""Every upsampling implementation is the same function as PyTorch's ConvTranspose2d(4, 2, 1).

The reference ('conv_transpose') is checked against a direct numpy scatter in float64; every
other implementation against the reference: outputs, gradients w.r.t. input and parameters,
grad-of-grad, jit, vmap, and the parameter pytree. Float32 tolerance: rtol = atol = 1e-4 on
O(1) values (the Toom-Cook transforms measure ~1e-6 relative error).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan.models import toomcook, upconv

TOL = dict(rtol=1e-4, atol=1e-4)
IMPLS = upconv.UPSAMPLERS.names()
# (N, H, W, Cin, features): odd sizes and channels; 17 features sends 'fast' to a Toom scheme.
SHAPES = [(2, 3, 5, 3, 5), (1, 8, 9, 6, 17)]


def numpy_conv_transpose(x, kernel):
  """PyTorch ConvTranspose2d(k=4, s=2, p=1) by definition: scatter every input tap, crop 1."""
  n, h, w, _ = x.shape
  y = np.zeros((n, 2 * h + 2, 2 * w + 2, kernel.shape[-1]))
  for kh in range(4):
    for kw in range(4):
      y[:, kh:kh + 2 * h:2, kw:kw + 2 * w:2] += np.einsum('nhwc,cd->nhwd', x, kernel[kh, kw])
  return y[:, 1:2 * h + 1, 1:2 * w + 1]


def _data(shape, seed=0):
  n, h, w, cin, cout = shape
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
  kernel = rng.standard_normal((4, 4, cin, cout)).astype(np.float32)
  cot = rng.standard_normal((n, 2 * h, 2 * w, cout)).astype(np.float32)
  return x, kernel, cot


def _params(kernel, bias=None):
  p = {'kernel': jnp.asarray(kernel)}
  if bias is not None:
    p['bias'] = jnp.asarray(bias)
  return {'params': p}


def test_registry_and_default():
  assert {'conv_transpose', upconv.DEFAULT_UPSAMPLER} <= set(IMPLS)
  with pytest.raises(ValueError, match='Valid upsampling implementation names'):
    upconv.UPSAMPLERS.get('nope')


@pytest.mark.parametrize('shape', SHAPES)
def test_reference_is_pytorch_semantics(shape):
  x, kernel, _ = _data(shape)
  y = upconv.UPSAMPLERS.get('conv_transpose')(shape[-1]).apply(_params(kernel), x)
  np.testing.assert_allclose(y, numpy_conv_transpose(x.astype(np.float64), kernel.astype(np.float64)),
                             **TOL)
  # Flax's own ConvTranspose computes the same with the kernel flipped (its correlation convention).
  flax_ct = nn.ConvTranspose(shape[-1], (4, 4), (2, 2), padding=((2, 2), (2, 2)), use_bias=False)
  np.testing.assert_allclose(flax_ct.apply(_params(kernel[::-1, ::-1].copy()), x), y, **TOL)


@pytest.mark.parametrize('name', IMPLS)
@pytest.mark.parametrize('shape', SHAPES)
def test_outputs_and_gradients_match_reference(name, shape):
  x, kernel, cot = _data(shape)
  bias = np.linspace(-1, 1, shape[-1]).astype(np.float32)

  def run(impl):
    module = upconv.UPSAMPLERS.get(impl)(shape[-1], use_bias=True)
    loss = lambda p, x: jnp.vdot(module.apply(p, x), cot)
    y = jax.jit(module.apply)(_params(kernel, bias), x)
    grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(_params(kernel, bias), x)
    return y, grads

  (y_ref, (gp_ref, gx_ref)), (y, (gp, gx)) = run('conv_transpose'), run(name)
  np.testing.assert_allclose(y, y_ref, **TOL)
  np.testing.assert_allclose(gx, gx_ref, **TOL)
  np.testing.assert_allclose(gp['params']['kernel'], gp_ref['params']['kernel'], **TOL)
  np.testing.assert_allclose(gp['params']['bias'], gp_ref['params']['bias'], **TOL)


@pytest.mark.parametrize('name', IMPLS)
def test_same_parameter_pytree(name):
  x = jnp.zeros((1, 3, 4, 6))
  key = jax.random.PRNGKey(0)
  for use_bias in (False, True):
    ref = jax.eval_shape(upconv.UPSAMPLERS.get('conv_transpose')(7, use_bias=use_bias).init, key, x)
    got = jax.eval_shape(upconv.UPSAMPLERS.get(name)(7, use_bias=use_bias).init, key, x)
    assert jax.tree.map(lambda a: (a.shape, a.dtype), got) == jax.tree.map(lambda a: (a.shape, a.dtype), ref)
  assert got['params']['kernel'].shape == (4, 4, 6, 7) and got['params']['bias'].shape == (7,)


def test_same_initial_values():
  x, key = jnp.zeros((1, 2, 3, 6)), jax.random.PRNGKey(0)
  init = lambda impl: upconv.UPSAMPLERS.get(impl)(7).init(key, x)['params']['kernel']
  np.testing.assert_array_equal(init(upconv.DEFAULT_UPSAMPLER), init('conv_transpose'))


@pytest.mark.parametrize('name', [n for n in IMPLS if n != 'conv_transpose'])
def test_grad_of_grad_matches_reference(name):
  """Second-order terms (e.g. gradient penalties) through the custom VJPs."""
  x, kernel, cot = _data((1, 4, 3, 2, 18), seed=1)

  def penalty(impl, kernel):
    module = upconv.UPSAMPLERS.get(impl)(18)
    gx = jax.grad(lambda x: jnp.vdot(jnp.tanh(module.apply(_params(kernel), x)), cot))(x)
    return jnp.sum(gx ** 2)

  second = jax.jit(jax.grad(penalty, argnums=1), static_argnums=0)
  np.testing.assert_allclose(second(name, kernel), second('conv_transpose', kernel), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('name', IMPLS)
def test_vmap_over_extra_axis(name):
  x, kernel, _ = _data((2, 3, 4, 2, 3), seed=2)
  module = upconv.UPSAMPLERS.get(name)(3)
  xs = np.stack([x, -2 * x])
  got = jax.jit(jax.vmap(lambda x: module.apply(_params(kernel), x)))(xs)
  np.testing.assert_allclose(got[1], module.apply(_params(kernel), xs[1]), **TOL)
  np.testing.assert_allclose(got[0], -0.5 * got[1], **TOL)


def test_schemes_flop_ratios():
  ratios = {k: s.flops_ratio() for k, s in toomcook.SCHEMES.items()}
  assert ratios == {'gemm': 1.0, 'toom2': 9 / 16, 'toom4': 25 / 64}


def test_choose_scheme_dcgan_shapes():
  assert upconv.choose_scheme(32, 32, 64, 3) == 'gemm'  # the RGB layer
  for h, cin, cout in [(4, 512, 256), (8, 256, 128), (16, 128, 64)]:
    assert upconv.choose_scheme(h, h, cin, cout) in ('toom2', 'toom4')


@pytest.mark.parametrize('bad', [np.zeros((3, 4, 5), np.float32), np.zeros((1, 2, 2, 3), np.int32)])
def test_bad_input_is_a_clear_error(bad):
  with pytest.raises(ValueError, match='NHWC|floating'):
    upconv.UPSAMPLERS.get(upconv.DEFAULT_UPSAMPLER)(4).init(jax.random.PRNGKey(0), bad)


@pytest.mark.parametrize('scheme', sorted(toomcook.SCHEMES))
def test_batch_chunks_match_reference(scheme):
  x, kernel, cot = _data((4, 5, 4, 3, 6), seed=3)
  loss = lambda f: lambda x, k: jnp.vdot(f(x, k), cot)
  chunked = jax.jit(jax.value_and_grad(loss(lambda x, k: upconv.fast_conv_transpose(x, k, scheme, chunks=2)),
                                       argnums=(0, 1)))
  reference = jax.value_and_grad(loss(upconv.conv_transpose_reference), argnums=(0, 1))
  (v, (gx, gk)), (v_ref, (gx_ref, gk_ref)) = chunked(x, kernel), reference(x, kernel)
  np.testing.assert_allclose(v, v_ref, rtol=1e-4)
  np.testing.assert_allclose(gx, gx_ref, **TOL)
  np.testing.assert_allclose(gk, gk_ref, **TOL)


@pytest.mark.parametrize('batch,size,cin,features,chunks', [
    (64, 16, 128, 64, 1),   # the DCGAN 16->32 layer runs unsliced
    (64, 8, 256, 128, 1),
    (64, 32, 16, 8, 1),     # gemm scheme: never sliced
    (16, 64, 8, 32, 2),     # 16 x 16 x 16 tiles = 4096 GEMM rows: two slices of 2048
])
def test_fast_layer_slices_as_choose_chunks_says(monkeypatch, batch, size, cin, features, chunks):
  calls = []
  real = upconv.fast_conv_transpose
  monkeypatch.setattr(upconv, 'fast_conv_transpose',
                      lambda x, k, scheme, c=1: calls.append(c) or real(x, k, scheme, c))
  layer = upconv.FastUpsample(features)
  x = jnp.zeros((batch, size, size, cin), jnp.float32)
  jax.eval_shape(lambda x: layer.init_with_output(jax.random.PRNGKey(0), x), x)
  assert calls == [chunks]


def test_choose_chunks():
  assert toomcook.choose_chunks('toom4', 64, 16, 16) == 1  # the DCGAN 16->32 layer: 1024 rows
  assert toomcook.choose_chunks('toom4', 64, 32, 32) == 2  # 4096 rows
  assert toomcook.choose_chunks('toom4', 64, 16, 16, min_rows=256) == 4
  assert toomcook.choose_chunks('toom4', 63, 16, 16) == 1  # the batch must divide
  assert toomcook.choose_chunks('toom4', 64, 8, 8) == 1
  assert toomcook.choose_chunks('gemm', 64, 32, 32) == 1
