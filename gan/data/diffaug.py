"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

Used inside the train step on both real and generated batches, in the D and the G update:
the augmentation is differentiable, so G gets gradients through it. Pure JAX, no Python
control flow on traced values, so it jits and pmaps; all randomness comes from `key`, drawn
per image. Pass the same key for the real and fake batch to give them the same transforms,
or two keys for independent ones.

Policies follow the original (github.com/mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py),
which also works on [-1, 1] images:

  color:       brightness (add U(-0.5, 0.5)), saturation (scale about the per-pixel channel
               mean by U(0, 2)), contrast (scale about the image mean by U(0.5, 1.5)).
               Not clipped, as in the original: clipping would zero the gradient there.
  translation: shift by an integer in [-s, s] per axis, s = round(size / 8), zero padded.
  cutout:      zero a square of round(size / 2) sides at a random position.

One deliberate difference: the original centres the cutout square anywhere and clips it at
the border, so it sometimes zeroes less than a full square; here the square always lies
fully inside the image, so every image loses exactly the same area.
"""
from typing import Callable, Tuple

import jax
import jax.numpy as jnp

from gan import spec as spec_lib
from gan.registry import Registry

PolicyFn = Callable[[jnp.ndarray, jax.Array], jnp.ndarray]

DIFFAUG_POLICIES = Registry('DiffAugment policy', plural='policies')


def _uniform(key: jax.Array, images: jnp.ndarray, low: float = 0.0, high: float = 1.0):
  """One U(low, high) number per image, shaped to broadcast over [N, H, W, C]."""
  return jax.random.uniform(key, (images.shape[0], 1, 1, 1), images.dtype, low, high)


def rand_brightness(images: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
  return images + _uniform(key, images, -0.5, 0.5)


def rand_saturation(images: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
  mean = jnp.mean(images, axis=-1, keepdims=True)
  return (images - mean) * _uniform(key, images, 0.0, 2.0) + mean


def rand_contrast(images: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
  mean = jnp.mean(images, axis=(1, 2, 3), keepdims=True)
  return (images - mean) * _uniform(key, images, 0.5, 1.5) + mean


@DIFFAUG_POLICIES.register('color')
def rand_color(images: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
  """Brightness, then saturation, then contrast, each with its own per-image factor."""
  k_bright, k_sat, k_con = jax.random.split(key, 3)
  images = rand_brightness(images, k_bright)
  images = rand_saturation(images, k_sat)
  return rand_contrast(images, k_con)


def shift_images(images: jnp.ndarray, shift_y: jnp.ndarray, shift_x: jnp.ndarray) -> jnp.ndarray:
  """Moves image i's content down by shift_y[i] and right by shift_x[i] pixels, zero filled.

  A gather plus a mask: differentiable w.r.t. images, and the shifts may be traced.
  """
  _, height, width, _ = images.shape
  rows = jnp.arange(height)[None, :] - shift_y[:, None]  # [N, H]: source row of each output row
  cols = jnp.arange(width)[None, :] - shift_x[:, None]  # [N, W]
  row_ok = (rows >= 0) & (rows < height)
  col_ok = (cols >= 0) & (cols < width)
  rows = jnp.clip(rows, 0, height - 1)
  cols = jnp.clip(cols, 0, width - 1)
  gathered = jax.vmap(lambda image, r, c: image[r][:, c])(images, rows, cols)
  inside = row_ok[:, :, None, None] & col_ok[:, None, :, None]
  return jnp.where(inside, gathered, jnp.zeros((), images.dtype))


@DIFFAUG_POLICIES.register('translation')
def rand_translation(images: jnp.ndarray, key: jax.Array, ratio: float = 0.125) -> jnp.ndarray:
  """Shifts each image by up to round(ratio * size) pixels per axis, zero padded."""
  n, height, width, _ = images.shape
  max_y, max_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
  k_y, k_x = jax.random.split(key)
  shift_y = jax.random.randint(k_y, (n,), -max_y, max_y + 1)
  shift_x = jax.random.randint(k_x, (n,), -max_x, max_x + 1)
  return shift_images(images, shift_y, shift_x)


def cutout_mask(key: jax.Array, n: int, height: int, width: int,
                ratio: float = 0.5) -> jnp.ndarray:
  """[N, H, W, 1] mask: 0 on one round(ratio * size) square per image (inside it), else 1."""
  cut_y, cut_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
  k_y, k_x = jax.random.split(key)
  top = jax.random.randint(k_y, (n, 1), 0, height - cut_y + 1)
  left = jax.random.randint(k_x, (n, 1), 0, width - cut_x + 1)
  rows = jnp.arange(height)[None, :]
  cols = jnp.arange(width)[None, :]
  in_rows = (rows >= top) & (rows < top + cut_y)  # [N, H]
  in_cols = (cols >= left) & (cols < left + cut_x)  # [N, W]
  return ~(in_rows[:, :, None, None] & in_cols[:, None, :, None])


@DIFFAUG_POLICIES.register('cutout')
def rand_cutout(images: jnp.ndarray, key: jax.Array, ratio: float = 0.5) -> jnp.ndarray:
  """Zeroes a square of round(ratio * size) sides at a random position in each image."""
  n, height, width, _ = images.shape
  mask = cutout_mask(key, n, height, width, ratio)
  return images * mask.astype(images.dtype)


POLICY_SPEC = spec_lib.OpSpec(DIFFAUG_POLICIES, example='color,translation,cutout')


def parse_policy(policy: str) -> Tuple[str, ...]:
  """'color, translation,cutout' -> ('color', 'translation', 'cutout'); '' -> () (gan/spec.py)."""
  if not isinstance(policy, str):  # config.diffaug is a string field.
    raise ValueError(f"DiffAugment policy must be a comma-separated string such as "
                     f"'color,translation,cutout', got {policy!r}.")
  return tuple(POLICY_SPEC.names(policy))


def diff_augment(images: jnp.ndarray, key: jax.Array,
                 policy: str = 'color,translation,cutout') -> jnp.ndarray:
  """Applies the policies in order to a batch [N, H, W, C] (in [-1, 1]); same shape/dtype.

  Differentiable w.r.t. images; randomness is per image and comes only from `key`.
  An empty policy returns the images unchanged.
  """
  names = parse_policy(policy)
  if images.ndim != 4:
    raise ValueError(f'diff_augment expects a batch [N, H, W, C], got shape {images.shape}.')
  if not jnp.issubdtype(images.dtype, jnp.floating):
    raise ValueError(f'diff_augment expects float images in [-1, 1], got {images.dtype}.')
  if not names:
    return images
  keys = jax.random.split(key, len(names))
  for name, sub_key in zip(names, keys):
    images = DIFFAUG_POLICIES.get(name)(images, sub_key)
  return images
