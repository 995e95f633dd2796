"""The EMA generator as a sampler: its standing BatchNorm statistics and eval-mode images.

Training's sample grids and checkpoints, the evaluation and the steering tools (gan.control) all
draw through one `EmaSampler`, so the statistics a checkpoint carries are the ones evaluation
re-estimates, and a (z, labels) pair gives the same image everywhere.
"""
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gan import steps
from gan.models import build_models, interface

# The standing statistics' key is PRNGKey(config.seed + STANDING_STATS_SEED_OFFSET): the same
# for every user, so re-estimating them reproduces the checkpointed ones.
STANDING_STATS_SEED_OFFSET = 2


def standing_stats_key(config) -> jnp.ndarray:
  return jax.random.PRNGKey(config.seed + STANDING_STATS_SEED_OFFSET)


class EmaSampler:
  """Eval-mode images of a GANState's EMA generator (state.ema_params, state.ema_batch_stats)."""

  def __init__(self, config, num_classes: Sequence[int], generator=None):
    """num_classes: values per attribute (ignored by an unconditional config); generator: the
    module if the caller already built it (default: built from the config)."""
    if generator is None:
      generator, _ = build_models(config, num_classes)
    self.num_attributes = len(num_classes) if config.model.conditional else 0
    self.latent_dim, self.resolution = int(generator.latent_dim), int(generator.resolution)
    self._sample = steps.make_sample_fn(generator)
    self._standing = steps.make_standing_stats_fn(interface.standing_stats_generator(generator),
                                                  config, num_classes)
    self._stats_key = standing_stats_key(config)

  def with_standing_stats(self, state):
    """The state with ema_batch_stats re-estimated for its EMA weights (as checkpoints hold)."""
    return state.replace(ema_batch_stats=self._standing(state.ema_params, state.g_batch_stats,
                                                        self._stats_key))

  def generate(self, state, z, labels) -> jnp.ndarray:
    """z [n, d], int labels [n, A] -> images [n, H, W, 3] in [-1, 1], in one call.

    An unconditional generator ignores the labels.
    """
    z = jnp.asarray(z, jnp.float32)
    if self.num_attributes:
      labels = jnp.asarray(labels, jnp.int32).reshape(z.shape[0], self.num_attributes)
    else:
      labels = jnp.zeros((z.shape[0], 0), jnp.int32)
    return self._sample(state.ema_params, state.ema_batch_stats, z, labels)

  def generate_batched(self, state, z, labels, batch_size: int, pad: bool = False
                       ) -> np.ndarray:
    """As `generate`, `batch_size` images at a time: float32 numpy [n, H, W, 3] in [-1, 1].

    pad: fill the last batch up to batch_size, so every batch has one compiled shape (for
    repeated calls at varied sizes, e.g. evaluation); without it, the last batch is smaller.
    """
    z, labels = np.asarray(z, np.float32), np.asarray(labels, np.int32)
    out = []
    for start in range(0, len(z), batch_size):
      zb, yb = z[start:start + batch_size], labels[start:start + batch_size]
      count = len(zb)
      if pad and count < batch_size:
        zb = np.concatenate([zb, np.zeros((batch_size - count,) + zb.shape[1:], zb.dtype)])
        yb = np.concatenate([yb, np.repeat(yb[:1], batch_size - count, axis=0)])
      out.append(np.asarray(jax.device_get(self.generate(state, zb, yb)))[:count])
    return np.concatenate(out)

