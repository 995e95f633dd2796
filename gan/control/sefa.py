"""Unsupervised edit directions in closed form from the generator's weights (SeFa).

Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs" (CVPR 2021): the first layer
maps the latent linearly, y = A z. Moving z by a unit vector n changes y by A n, so the directions
that change the image most are the unit n maximising |A n|^2 = n^T A^T A n: the eigenvectors of
A^T A with the largest eigenvalues. No data, no training: one small eigendecomposition.

Here the first layer is the generator's Dense 'project' layer. The conditional generator feeds it
[z, attribute embedding], so only the kernel rows belonging to z (the first latent_dim rows) act on
the latent: with flax's y = x @ K, A = K[:latent_dim].T and A^T A = K_z K_z^T.

A generator built with `latent_in_every_layer` also feeds z to every conditional BatchNorm's gain
and bias layers; as SeFa does for BigGAN, the z rows of all those kernels are stacked with the
first layer's (A^T A = sum over layers of K_z K_z^T), so the directions see every path of z.
"""
from typing import Tuple

import numpy as np

FIRST_LAYER = 'project'
NORM_PREFIX = 'norm_'          # The generator's conditional BatchNorms: norm_<i>/{gamma,beta}.


def first_layer_weight(g_params, latent_dim: int) -> np.ndarray:
  """The part of the first Dense kernel that multiplies z: float64 [latent_dim, out]."""
  try:
    kernel = g_params[FIRST_LAYER]['kernel']
  except (KeyError, TypeError) as e:
    raise ValueError(f'SeFa needs a generator whose first layer is a Dense named {FIRST_LAYER!r} '
                     f'acting on the latent; this one has top-level modules '
                     f'{sorted(g_params) if hasattr(g_params, "keys") else "?"}.') from e
  kernel = np.asarray(kernel, np.float64)
  if kernel.ndim != 2 or kernel.shape[0] < latent_dim:
    raise ValueError(f'The {FIRST_LAYER!r} kernel has shape {kernel.shape}; expected '
                     f'[>= {latent_dim}, out].')
  return kernel[:latent_dim]


def latent_weight(g_params, latent_dim: int, latent_in_every_layer: bool = False) -> np.ndarray:
  """Every kernel part that multiplies z, stacked along outputs: float64 [latent_dim, out]."""
  parts = [first_layer_weight(g_params, latent_dim)]
  if latent_in_every_layer:
    norms = sorted((k for k in g_params if k.startswith(NORM_PREFIX)),
                   key=lambda k: int(k[len(NORM_PREFIX):]))
    for name in norms:
      for head in ('gamma', 'beta'):
        # Each layer's z rows come first in its [z, attributes] input (see dcgan.py).
        parts.append(np.asarray(g_params[name][head]['kernel'], np.float64)[:latent_dim])
  return np.concatenate(parts, axis=1)


def directions_from_weight(weight: np.ndarray, k: int = None) -> Tuple[np.ndarray, np.ndarray]:
  """Top-k eigenvectors of A^T A for A = weight.T, weight [latent_dim, out].

  Returns (directions [k, latent_dim] with orthonormal rows, eigenvalues [k]), strongest first.
  Each direction's sign is fixed (largest-magnitude component positive) so that the same weights
  always give the same directions.
  """
  weight = np.asarray(weight, np.float64)
  d = weight.shape[0]
  k = d if k is None else int(k)
  if not 1 <= k <= d:
    raise ValueError(f'The number of directions must be between 1 and latent_dim={d}, got {k}.')
  gram = weight @ weight.T                       # = A^T A, symmetric [d, d].
  eigenvalues, eigenvectors = np.linalg.eigh(gram)  # Ascending.
  order = np.argsort(eigenvalues)[::-1][:k]
  directions = eigenvectors[:, order].T
  peak = np.argmax(np.abs(directions), axis=1)
  directions *= np.sign(directions[np.arange(k), peak])[:, None]
  return directions.astype(np.float32), eigenvalues[order]


def sefa_directions(g_params, latent_dim: int, k: int = None,
                    latent_in_every_layer: bool = False) -> Tuple[np.ndarray, np.ndarray]:
  """(directions [k, latent_dim], eigenvalues [k]) of a generator's parameters."""
  return directions_from_weight(latent_weight(g_params, latent_dim, latent_in_every_layer), k)


def apply_direction(z, direction, strength) -> np.ndarray:
  """z + strength * direction (strength in units of the latent's standard deviation)."""
  return (np.asarray(z, np.float32) + np.float32(strength) * np.asarray(direction, np.float32))
