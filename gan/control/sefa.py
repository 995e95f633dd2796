"""Unsupervised edit directions in closed form from the generator's weights (SeFa).

Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs" (CVPR 2021): the first layer
maps the latent linearly, y = A z. Moving z by a unit vector n changes y by A n, so the directions
that change the image most are the unit n maximising |A n|^2 = n^T A^T A n: the eigenvectors of
A^T A with the largest eigenvalues. No data, no training: one small eigendecomposition.

The weight A comes from the model interface (gan/models/interface.py): the generator's
`latent_weight(variables)` returns every kernel part that multiplies z, [latent_dim, k]. A generator
that feeds z to several layers (dcgan's latent_in_every_layer, BigGAN's hierarchical z) stacks
them all, as SeFa does for BigGAN: A^T A = sum over layers of K_z K_z^T, so the directions see
every path of z.
"""
from typing import Tuple

import numpy as np

from gan.models import interface


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


def sefa_directions(generator, g_variables, k: int = None) -> Tuple[np.ndarray, np.ndarray]:
  """(directions [k, latent_dim], eigenvalues [k]) of a generator module and its variables
  ({'params', 'batch_stats'})."""
  return directions_from_weight(interface.latent_weight(generator, g_variables), k)


def apply_direction(z, direction, strength) -> np.ndarray:
  """z + strength * direction (strength in units of the latent's standard deviation)."""
  return (np.asarray(z, np.float32) + np.float32(strength) * np.asarray(direction, np.float32))
