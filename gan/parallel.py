"""The one place that knows about devices: pmap axis, batch sharding, global-batch randomness."""
import jax
import jax.numpy as jnp
import numpy as np

AXIS = 'batch'


def per_device_batch_size(global_batch_size: int) -> int:
  """Per-device batch for a GLOBAL batch, with a clear error when it does not divide."""
  n = jax.device_count()
  if global_batch_size <= 0 or global_batch_size % n:
    raise ValueError(
        f'batch_size={global_batch_size} must be a positive multiple of the number of devices '
        f'({n}: {jax.local_device_count()} local x {jax.process_count()} processes). '
        f'Use e.g. --config.batch_size={max(n, (global_batch_size // n) * n or n)}.')
  return global_batch_size // n


def shard(tree):
  """[local_batch, ...] host arrays -> [local_devices, per_device, ...]."""
  d = jax.local_device_count()
  return jax.tree_util.tree_map(lambda x: x.reshape((d, -1) + x.shape[1:]), tree)


def global_draw(key, sample_fn, local_shape, axis_name=AXIS):
  """Draws randomness for the GLOBAL batch from `key` and returns this device's slice.

  Inside pmap. Every device derives the same global draw, so the result of a step depends on the
  global batch and the seed only, not on how many devices share the batch.
  """
  local_n = local_shape[0]
  num_devices = jax.lax.axis_size(axis_name)
  full = sample_fn(key, (local_n * num_devices,) + tuple(local_shape[1:]))
  start = jax.lax.axis_index(axis_name) * local_n
  return jax.lax.dynamic_slice_in_dim(full, start, local_n, axis=0)


def device_key(key, axis_name=AXIS):
  """A key unique to this device (for randomness that need not be device-count invariant)."""
  return jax.random.fold_in(key, jax.lax.axis_index(axis_name))


def to_host(tree):
  return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))
