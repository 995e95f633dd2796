"""Latent vectors: seeded draws, the truncation trick, spherical interpolation. Pure functions.

Truncation (BigGAN's "truncation trick"): each latent component is drawn from N(0, 1) *conditioned
on* |z_i| <= threshold, i.e. out-of-range components are resampled, not clipped or scaled. Why
resampling: the result stays a smooth, symmetric density with every value in range equally likely
to come out as under N(0, 1), so lower thresholds trade diversity for typical-looking images without
piling mass onto the boundary (clipping) or changing the shape of the distribution (scaling).
threshold=None (or 0) means no truncation.
"""
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np


def check_truncation(truncation: Optional[float]) -> Optional[float]:
  """None/0 -> None (no truncation); a positive threshold is kept; anything else is an error."""
  if truncation is None or truncation == 0:
    return None
  truncation = float(truncation)
  if not np.isfinite(truncation) or truncation < 0:
    raise ValueError(f'truncation must be a positive threshold (e.g. 0.7) or 0 for none; got '
                     f'{truncation}.')
  return truncation


def draw(key, shape, truncation: Optional[float] = None) -> jnp.ndarray:
  """N(0, 1) latents, or N(0, 1) restricted to [-truncation, truncation] (resampled)."""
  truncation = check_truncation(truncation)
  if truncation is None:
    return jax.random.normal(key, shape)
  return jax.random.truncated_normal(key, -truncation, truncation, shape)


def seed_latents(seed: int, num: int, latent_dim: int, truncation: Optional[float] = None,
                 start: int = 0) -> np.ndarray:
  """Latent i of seed s is always the same vector, whatever `num` is: [num, latent_dim] float32.

  So `--seed 3 --num 1` shows exactly the first image of `--seed 3 --num 16`, and the endpoints
  of `--interpolate 3,7` are the first images of seeds 3 and 7.
  """
  base = jax.random.PRNGKey(seed)
  keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(start, start + num))
  return np.asarray(jax.vmap(lambda k: draw(k, (latent_dim,), truncation))(keys), np.float32)


def slerp(a, b, t):
  """Spherical interpolation from a (t=0) to b (t=1) along the great circle, norms interpolated.

  Gaussian latents live near a sphere of radius sqrt(d); a straight line between two of them passes
  through the low-norm interior the generator rarely saw, slerp does not. a, b: [..., d]; t: scalar
  or [...]. Falls back to linear interpolation when a and b are (anti)parallel.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  t = np.asarray(t, np.float64)[..., None]
  na = np.linalg.norm(a, axis=-1, keepdims=True)
  nb = np.linalg.norm(b, axis=-1, keepdims=True)
  ua, ub = a / np.maximum(na, 1e-12), b / np.maximum(nb, 1e-12)
  cos = np.clip(np.sum(ua * ub, axis=-1, keepdims=True), -1.0, 1.0)
  omega = np.arccos(cos)
  sin = np.sin(omega)
  safe = sin > 1e-6
  sin_ = np.where(safe, sin, 1.0)
  wa = np.where(safe, np.sin((1.0 - t) * omega) / sin_, 1.0 - t)
  wb = np.where(safe, np.sin(t * omega) / sin_, t)
  direction = wa * ua + wb * ub
  direction /= np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-12)
  norm = (1.0 - t) * na + t * nb
  out = np.where(safe, direction * norm, (1.0 - t) * a + t * b)
  return out.astype(np.float32)


def interpolation_path(a, b, frames: int) -> np.ndarray:
  """`frames` latents from a to b (both included) by slerp: [frames, d]."""
  if frames < 2:
    raise ValueError(f'An interpolation needs at least 2 frames, got {frames}.')
  t = np.linspace(0.0, 1.0, frames)
  a = np.broadcast_to(a, (frames,) + np.shape(a))
  b = np.broadcast_to(b, (frames,) + np.shape(b))
  return slerp(a, b, t)
