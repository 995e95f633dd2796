"""Tests for gan/data/diffaug.py (DiffAugment in JAX)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan.data import diffaug
from gan.data.diffaug import DIFFAUG_POLICIES, diff_augment, parse_policy

N, H, W, C = 6, 16, 12, 3
POLICIES = ['color', 'translation', 'cutout', 'color,translation,cutout']


def _images(seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), (N, H, W, C), jnp.float32, -1.0, 1.0)


def test_policies_registered():
  assert {'color', 'translation', 'cutout'} <= set(DIFFAUG_POLICIES.names())


@pytest.mark.parametrize('policy', POLICIES)
def test_shape_dtype_and_key_determinism(policy):
  x = _images()
  a = diff_augment(x, jax.random.PRNGKey(1), policy)
  b = diff_augment(x, jax.random.PRNGKey(1), policy)
  c = diff_augment(x, jax.random.PRNGKey(2), policy)
  assert a.shape == x.shape and a.dtype == x.dtype
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not np.array_equal(np.asarray(a), np.asarray(c))
  assert not np.array_equal(np.asarray(a), np.asarray(x))


@pytest.mark.parametrize('policy', POLICIES)
def test_randomness_is_per_image(policy):
  x = jnp.broadcast_to(_images()[:1], (N, H, W, C))  # N copies of one image
  out = np.asarray(diff_augment(x, jax.random.PRNGKey(3), policy))
  assert len({out[i].tobytes() for i in range(N)}) > 1


def test_typed_keys_work():
  x = _images()
  out = diff_augment(x, jax.random.key(1))
  assert out.shape == x.shape


@pytest.mark.parametrize('policy', POLICIES)
def test_gradient_is_finite_and_nonzero(policy):
  x = _images()
  key = jax.random.PRNGKey(4)
  grad = jax.grad(lambda v: jnp.sum(diff_augment(v, key, policy) ** 2))(x)
  assert grad.shape == x.shape
  assert bool(jnp.all(jnp.isfinite(grad)))
  assert float(jnp.abs(grad).sum()) > 0


def test_shift_images_explicit_case():
  x = np.arange(2 * 4 * 5 * 1, dtype=np.float32).reshape(2, 4, 5, 1) + 1
  out = np.asarray(diffaug.shift_images(jnp.asarray(x), jnp.array([1, -2]), jnp.array([-1, 2])))
  want = np.zeros_like(x)
  want[0, 1:, :4] = x[0, :3, 1:]  # image 0: down 1, left 1
  want[1, :2, 2:] = x[1, 2:, :3]  # image 1: up 2, right 2
  np.testing.assert_array_equal(out, want)


def test_translation_is_a_zero_padded_shift_within_one_eighth():
  x = np.asarray(_images()) + 3.0  # no zeros in the content, so padding is visible
  out = np.asarray(diff_augment(jnp.asarray(x), jax.random.PRNGKey(5), 'translation'))
  max_y, max_x = 2, 2  # round(16 / 8), round(12 / 8)
  shifts = set()
  for i in range(N):
    found = None
    for dy in range(-max_y, max_y + 1):
      for dx in range(-max_x, max_x + 1):
        want = np.zeros_like(x[i])
        want[max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = (
            x[i, max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)])
        if np.array_equal(out[i], want):
          found = (dy, dx)
    assert found is not None, f'image {i} is not a zero-padded shift of at most 1/8'
    shifts.add(found)
  assert len(shifts) > 1


@pytest.mark.parametrize('height, width', [(16, 12), (10, 7)])
def test_cutout_zeroes_exactly_one_square_per_image(height, width):
  n = 16
  ones = jnp.ones((n, height, width, C))
  out = np.asarray(diff_augment(ones, jax.random.PRNGKey(6), 'cutout'))
  cut_y, cut_x = int(height / 2 + 0.5), int(width / 2 + 0.5)
  corners = set()
  for i in range(n):
    zero = out[i, :, :, 0] == 0
    assert zero.sum() == cut_y * cut_x
    rows, cols = np.nonzero(zero)
    assert rows.max() - rows.min() + 1 == cut_y and cols.max() - cols.min() + 1 == cut_x
    # Every channel is cut in the same place; the rest is untouched.
    assert np.all((out[i] == 0) == zero[:, :, None])
    assert np.all(out[i][~zero] == 1.0)
    corners.add((rows.min(), cols.min()))
  assert len(corners) > 1


def test_color_matches_the_original_formulas():
  x = _images()
  key = jax.random.PRNGKey(7)
  out = diff_augment(x, key, 'color')
  k_bright, k_sat, k_con = jax.random.split(jax.random.split(key, 1)[0], 3)
  u = lambda k: np.asarray(jax.random.uniform(k, (N, 1, 1, 1)))
  want = np.asarray(x) + (u(k_bright) - 0.5)
  mean = want.mean(axis=-1, keepdims=True)
  want = (want - mean) * (u(k_sat) * 2) + mean
  mean = want.mean(axis=(1, 2, 3), keepdims=True)
  want = (want - mean) * (u(k_con) + 0.5) + mean
  np.testing.assert_allclose(np.asarray(out), want, atol=1e-5)


@pytest.mark.parametrize('policy', ['', ' ', ', ,'])
def test_empty_policy_is_identity(policy):
  x = _images()
  assert diff_augment(x, jax.random.PRNGKey(0), policy) is x
  assert parse_policy(policy) == ()


def test_policy_parsing_and_errors():
  assert parse_policy(' color , cutout') == ('color', 'cutout')
  with pytest.raises(ValueError, match=r"'flip'.*Valid policies: color, cutout, translation"):
    diff_augment(_images(), jax.random.PRNGKey(0), 'color,flip')
  with pytest.raises(ValueError, match='comma-separated string'):
    parse_policy(['color'])
  with pytest.raises(ValueError, match=r'batch \[N, H, W, C\]'):
    diff_augment(jnp.zeros((H, W, C)), jax.random.PRNGKey(0))


def test_jit_and_pmap():
  x = _images()
  key = jax.random.PRNGKey(8)
  eager = diff_augment(x, key)
  jitted = jax.jit(diff_augment, static_argnames='policy')(x, key, policy='color,translation,cutout')
  np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), atol=1e-6)
  devices = jax.local_device_count()
  batch = jnp.broadcast_to(x, (devices,) + x.shape)
  keys = jax.random.split(key, devices)
  pmapped = jax.pmap(lambda b, k: diff_augment(b, k), axis_name='batch')(batch, keys)
  assert pmapped.shape == batch.shape
  np.testing.assert_allclose(np.asarray(pmapped[0]), np.asarray(diff_augment(x, keys[0])),
                             atol=1e-6)
