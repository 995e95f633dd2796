"""GANState: everything that affects the future of a run, as one pytree (checkpointed whole)."""
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


@flax.struct.dataclass
class GANState:
  step: jnp.ndarray             # Number of completed G updates.
  g_params: PyTree
  g_batch_stats: PyTree         # Generator BatchNorm running statistics.
  d_params: PyTree
  d_batch_stats: PyTree         # Discriminator BatchNorm statistics and spectral-norm vectors.
  g_opt_state: PyTree
  d_opt_state: PyTree
  ema_params: PyTree            # EMA of the generator weights: used for all sampling.
  ema_batch_stats: PyTree       # BatchNorm statistics re-estimated for the EMA weights ("standing").
  rng: jnp.ndarray              # Base key; each step folds in its step number.


def _dummy_inputs(generator, discriminator, num_classes):
  n = 2
  z = jnp.zeros((n, generator.latent_dim), jnp.float32)
  labels = jnp.zeros((n, len(num_classes)), jnp.int32)
  r = discriminator.resolution
  images = jnp.zeros((n, r, r, 3), jnp.float32)
  return z, labels, images


def create_state(config, generator, discriminator, g_tx, d_tx, num_classes, seed: int) -> GANState:
  """Initialises parameters, optimiser states and EMA from `seed` (deterministic)."""
  init_key, g_key, d_key, run_key = jax.random.split(jax.random.PRNGKey(seed), 4)
  del init_key
  z, labels, images = _dummy_inputs(generator, discriminator, num_classes)

  @jax.jit
  def init():
    g_vars = generator.init(g_key, z, labels, train=False)
    d_vars = discriminator.init(d_key, images, labels, train=False)
    g_params, d_params = g_vars['params'], d_vars['params']
    g_stats = g_vars.get('batch_stats', {})
    return GANState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_params, g_batch_stats=g_stats,
        d_params=d_params, d_batch_stats=d_vars.get('batch_stats', {}),
        g_opt_state=g_tx.init(g_params), d_opt_state=d_tx.init(d_params),
        ema_params=g_params, ema_batch_stats=g_stats,
        rng=run_key)

  return init()


def count_params(tree: PyTree) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))
