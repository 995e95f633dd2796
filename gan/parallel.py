"""The one place that knows about devices: pmap axis, batch sharding and prefetch onto the devices,
global-batch randomness, and multi-host initialisation (jax.distributed)."""
import os
from typing import Iterator, Optional

import jax
from absl import logging
from flax import jax_utils
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


def prefetch_to_devices(batches: Iterator, size: int) -> Iterator:
  """Host batches [local_devices, per_device, ...] -> the same on this process's devices, `size`
  batches ahead of the step (flax's prefetch_to_device), so the copy overlaps the running step;
  0 = off: pmap copies each batch as the step starts. Values are unchanged either way."""
  return jax_utils.prefetch_to_device(batches, size) if size else batches


def replicated(tree, devices=None):
  """Places `tree` the way the pmapped step returns its unreplicated outputs (out_axes=None).

  Feeding the step an input placed any other way (e.g. the freshly initialised state on one device)
  makes pmap compile the step a second time at step 2.
  """
  devices = list(devices or jax.local_devices())
  sharding = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(devices), (AXIS,)),
                                        jax.sharding.PartitionSpec())
  return jax.device_put(tree, sharding)


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


def _on_multihost_tpu_vm() -> bool:
  # Cloud TPU VM pod slices list every worker here; a single-host TPU VM lists one.
  hosts = os.environ.get('TPU_WORKER_HOSTNAMES', '')
  return len([h for h in hosts.split(',') if h.strip()]) > 1


def initialize_distributed(coordinator_address: Optional[str] = None,
                           num_processes: Optional[int] = None,
                           process_id: Optional[int] = None) -> bool:
  """Starts JAX's multi-controller runtime when this is a multi-host run; returns True if so.

  Explicit arguments win, then the environment (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
  JAX_PROCESS_ID), then Cloud TPU VM auto-detection. A single-process run needs nothing.
  Must run before any other JAX call.
  """
  address = coordinator_address or os.environ.get('JAX_COORDINATOR_ADDRESS')
  if num_processes is None and os.environ.get('JAX_NUM_PROCESSES'):
    num_processes = int(os.environ['JAX_NUM_PROCESSES'])
  if process_id is None and os.environ.get('JAX_PROCESS_ID'):
    process_id = int(os.environ['JAX_PROCESS_ID'])
  if address:
    if num_processes is None or process_id is None:
      raise ValueError('A multi-host run with --coordinator-address also needs --num-processes and '
                       '--process-id (or JAX_NUM_PROCESSES / JAX_PROCESS_ID).')
    if not 0 <= process_id < num_processes:
      raise ValueError(f'process_id={process_id} must be in [0, {num_processes}).')
    if num_processes == 1:
      return False
    # CPU devices need a collectives backend to talk across processes (no effect on GPU/TPU).
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(coordinator_address=address, num_processes=num_processes,
                               process_id=process_id)
  elif _on_multihost_tpu_vm():
    jax.distributed.initialize()  # Everything is discovered from the TPU metadata.
  else:
    return False
  logging.info('jax.distributed: process %d of %d, %d local / %d global devices.',
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())
  return True
