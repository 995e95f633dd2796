"""Tests run on 8 forced CPU devices so pmap sharding is exercised (set before jax is imported).

Also on a GPU machine: the suite's batches are shaped for those 8 devices, and the fast CPU layers
are what the layer tests check (on a GPU they fall back to XLA's convolutions).
"""
import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # noqa: E402

from configs import default  # noqa: E402


def tiny_config(**overrides):
  """A config small enough to train a few steps in seconds on 2 CPU cores."""
  c = default.get_config()
  c.data.name = 'synthetic_products/tiny'
  c.data.resolution = 16
  c.data.shuffle_buffer = 128
  c.batch_size = 16
  c.model.g_width = 8
  c.model.d_width = 8
  c.model.embed_dim = 8
  c.model.latent_dim = 16
  c.num_train_steps = 4
  c.log_every_steps = 2
  c.sample_every_steps = 2
  c.checkpoint_every_steps = 2
  c.sample.standing_stats_batches = 1
  for key, value in overrides.items():
    target = c
    *path, last = key.split('.')
    for p in path:
      target = target[p]
    target[last] = value
  return c


@pytest.fixture(scope='session')
def tfds_dir(tmp_path_factory):
  """One TFDS data dir shared by the tests, with synthetic_products/tiny built once."""
  import tensorflow_datasets as tfds
  import gan.data  # noqa: F401
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  tfds.builder('synthetic_products/tiny', data_dir=data_dir).download_and_prepare()
  return data_dir
