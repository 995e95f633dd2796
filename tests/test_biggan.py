"""The biggan generator and discriminator: shapes, spectral norm, conditioning, fast convs,
device-count invariance of the step, exact resume, bfloat16."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import biggan_catalog, biggan_products, biggan_products_128
from gan import train
from gan.models import biggan, build_models, toomcook
from tests.conftest import tiny_config
from tests.test_steps import _run, assert_one_and_eight_devices_agree

NUM_CLASSES = (3, 4)


def biggan_config(**overrides):
  """tiny_config with the biggan networks at 16 px, ch 4, self-attention at 8x8."""
  base = {'model.generator': 'biggan', 'model.discriminator': 'biggan', 'model.ch': 4,
          'model.attention_resolution': 8, 'loss': 'hinge'}
  return tiny_config(**dict(base, **overrides))


def _inputs(config, n=4, seed=0):
  rng = np.random.default_rng(seed)
  r = config.data.resolution
  z = jnp.asarray(rng.normal(size=(n, config.model.latent_dim)), jnp.float32)
  labels = jnp.asarray(np.stack([rng.integers(0, c, n) for c in NUM_CLASSES], 1), jnp.int32)
  images = jnp.asarray(rng.uniform(-1, 1, (n, r, r, 3)), jnp.float32)
  return z, labels, images


def _init(config, num_classes=NUM_CLASSES):
  g, d = build_models(config, num_classes)
  z, labels, images = _inputs(config)
  g_vars = g.init(jax.random.PRNGKey(0), z, labels, train=False)
  d_vars = d.init(jax.random.PRNGKey(1), images, labels, train=False)
  return g, d, g_vars, d_vars


@pytest.mark.parametrize('resolution,attention', [(32, 16), (64, 32), (128, 0)])
def test_output_shapes(resolution, attention):
  config = biggan_config(**{'data.resolution': resolution, 'model.attention_resolution': attention,
                            'model.ch': 2})
  g, d = build_models(config, NUM_CLASSES)
  z, labels, images = _inputs(config, n=2)

  def run():
    g_vars = g.init(jax.random.PRNGKey(0), z, labels, train=False)
    d_vars = d.init(jax.random.PRNGKey(1), images, labels, train=False)
    return g.apply(g_vars, z, labels, train=False), d.apply(d_vars, images, labels, train=False)

  fake, (logits, class_logits) = jax.eval_shape(run)
  assert fake.shape == (2, resolution, resolution, 3) and fake.dtype == jnp.float32
  assert logits.shape == (2,)
  assert [c.shape for c in class_logits] == [(2, 3), (2, 4)]


def test_default_channel_multipliers_match_the_peer_and_biggan():
  assert biggan.default_channel_multipliers(64) == (16, 8, 4, 2, 1)  # torch_resnet_ref.py
  assert biggan.default_channel_multipliers(128) == (16, 16, 8, 4, 2, 1)  # BigGAN-128


def test_peer_sized_networks_have_the_peers_parameter_counts():
  """ch 32, 64 px, 8 classes: the PyTorch peer has G 3.2M and D 4.9M parameters."""
  config = biggan_config(**{'data.resolution': 64, 'model.ch': 32, 'model.latent_dim': 120,
                            'model.embed_dim': 128, 'model.attention_resolution': 0,
                            'model.aux_classifier': False})
  g, d = build_models(config, (8,))
  z, images, labels = jnp.zeros((1, 120)), jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 1), jnp.int32)
  count = lambda v: sum(x.size for x in jax.tree_util.tree_leaves(v['params']))
  g_vars = jax.eval_shape(lambda: g.init(jax.random.PRNGKey(0), z, labels, train=False))
  d_vars = jax.eval_shape(lambda: d.init(jax.random.PRNGKey(0), images, labels, train=False))
  assert round(count(g_vars) / 1e6, 1) == 3.2
  assert round(count(d_vars) / 1e6, 1) == 4.9


@pytest.mark.parametrize('bad,match', [
    ({'model.channel_multipliers': (4, 2)}, 'channel_multipliers needs 3'),
    ({'model.attention_resolution': 16}, 'attention_resolution must be 0'),
    ({'model.dtype': 'float16'}, 'Unknown model.dtype'),
    ({'data.resolution': 8}, 'power-of-two resolution >= 16'),
])
def test_bad_model_settings_are_clear_errors(bad, match):
  with pytest.raises(ValueError, match=match):
    build_models(biggan_config(**bad), NUM_CLASSES)


def _weight_paths(params):
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
  return {'/'.join(k) for k, v in flat.items() if v.ndim >= 2}


def test_spectral_norm_is_applied_to_every_weight_of_both_networks():
  config = biggan_config()
  g, d, g_vars, d_vars = _init(config)
  for variables, unnormalised in ((g_vars, {'shared/embed_0/embedding',
                                            'shared/embed_1/embedding'}), (d_vars, set())):
    weights = _weight_paths(variables['params'])
    stats = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables['batch_stats']))
    # An SN wrapper 'sn_X' of layer X holds 'X/<param path>/u' for every normalised matrix.
    normalised = set()
    for path in stats:
      if path[-1].endswith('/u'):
        prefix = '/'.join(path[:-2])
        normalised.add('/'.join(filter(None, [prefix, path[-1][:-2]])))
    assert weights - unnormalised == normalised, (weights - unnormalised) ^ normalised

  # And it acts: scaling every normalised weight leaves both networks' outputs unchanged.
  def scaled(variables, keep):
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables['params']))
    flat = {k: v * 3.0 if v.ndim >= 2 and '/'.join(k) not in keep else v for k, v in flat.items()}
    return dict(variables, params=flax.traverse_util.unflatten_dict(flat))

  z, labels, images = _inputs(config)
  embeddings = {'shared/embed_0/embedding', 'shared/embed_1/embedding'}
  np.testing.assert_allclose(g.apply(scaled(g_vars, embeddings), z, labels, train=False),
                             g.apply(g_vars, z, labels, train=False), atol=2e-5)
  np.testing.assert_allclose(d.apply(scaled(d_vars, set()), images, labels, train=False)[0],
                             d.apply(d_vars, images, labels, train=False)[0], rtol=1e-4,
                             atol=1e-4)


def test_the_attribute_embedding_reaches_every_conditional_batchnorm():
  config = biggan_config()
  g, _, g_vars, _ = _init(config)
  z, labels, _ = _inputs(config)

  def gains_and_biases(labels):
    _, state = g.apply(g_vars, z, labels, train=False, mutable=['intermediates'],
                       capture_intermediates=lambda m, _: m.name in ('gain', 'bias'))
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(state['intermediates']))
    return {k: v[0] for k, v in flat.items() if k[-1] == '__call__'}

  before = gains_and_biases(labels)
  n_blocks = biggan.num_blocks(config.data.resolution)
  assert len(before) == 2 * 2 * n_blocks  # gain and bias of both CBNs of every up-block
  for a in range(len(NUM_CLASSES)):  # Each attribute alone, 'unspecified' included.
    changed = labels.at[:, a].set((labels[:, a] + 1) % (NUM_CLASSES[a] + 1))
    after = gains_and_biases(changed)
    for path, value in before.items():
      assert float(jnp.min(jnp.max(jnp.abs(after[path] - value), axis=-1))) > 1e-6, (a, path)


@pytest.mark.parametrize('shape', [(2, 8, 8, 16), (2, 16, 16, 32)])
def test_fast_resampling_convs_equal_upsample_or_pool_around_the_3x3_conv(shape):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=shape), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, shape[-1], 24)) / 10, jnp.float32)
  assert toomcook.fast_path(x)
  pairs = [(biggan.up_conv3x3, lambda x, w: biggan.conv3x3_reference(biggan.upsample_nearest(x), w)),
           (biggan.conv3x3_down, lambda x, w: biggan.avg_pool2(biggan.conv3x3_reference(x, w))),
           (biggan.im2col_conv3x3, biggan.conv3x3_reference)]
  for fast, reference in pairs:
    np.testing.assert_allclose(fast(x, w), reference(x, w), atol=2e-4, rtol=1e-4)
    loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
    for a, b in zip(jax.grad(loss(fast), (0, 1))(x, w), jax.grad(loss(reference), (0, 1))(x, w)):
      np.testing.assert_allclose(a, b, atol=2e-3, rtol=1e-3)


def test_one_device_and_eight_devices_give_the_same_parameters():
  fresh, one = assert_one_and_eight_devices_agree(biggan_config())
  # Spectral-norm vectors are state, updated by the step (and so checkpointed with it).
  assert any(float(np.max(np.abs(a - b))) > 0 for a, b in zip(
      jax.tree_util.tree_leaves(fresh.d_batch_stats), jax.tree_util.tree_leaves(one.d_batch_stats)))


def test_bfloat16_matches_float32_and_keeps_float32_state():
  config = biggan_config()
  g, d, g_vars, d_vars = _init(config)
  g16, d16 = build_models(biggan_config(**{'model.dtype': 'bfloat16'}), NUM_CLASSES)
  z, labels, images = _inputs(config, n=8)
  fake, fake16 = (m.apply(g_vars, z, labels, train=True, mutable=['batch_stats'])[0]
                  for m in (g, g16))
  assert fake16.dtype == jnp.float32
  err = np.abs(np.asarray(fake16) - np.asarray(fake))
  assert err.mean() < 0.02 and err.max() < 0.15, (err.mean(), err.max())
  logits, logits16 = (m.apply(d_vars, images, labels, train=False)[0] for m in (d, d16))
  assert logits16.dtype == jnp.float32
  np.testing.assert_allclose(logits16, logits, rtol=0.05, atol=0.05 * float(jnp.std(logits)))
  # A bf16 training step runs; parameters, statistics and optimiser state stay float32.
  state, metrics = _run(biggan_config(**{'model.dtype': 'bfloat16'}), 2, num_steps=1)
  assert np.isfinite(metrics['g_loss']) and np.isfinite(metrics['d_loss'])
  dtypes = {x.dtype for x in jax.tree_util.tree_leaves(state) if jnp.issubdtype(x.dtype,
                                                                                 jnp.floating)}
  assert dtypes == {jnp.dtype(jnp.float32)}


def test_resume_of_a_biggan_run_is_exact(tfds_dir, tmp_path):
  config = biggan_config(**{'data.data_dir': tfds_dir, 'sample_every_steps': 0,
                            'model.attention_resolution': 0})
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  config.num_train_steps = 2
  train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  config.num_train_steps = 4
  resumed = train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  assert int(straight.step) == int(resumed.step) == 4
  a, b = jax.tree_util.tree_leaves(straight), jax.tree_util.tree_leaves(resumed)
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize('module', [biggan_products, biggan_products_128, biggan_catalog])
def test_biggan_configs_build(module):
  config = module.get_config()
  train.validate_config(config)
  g, d = build_models(config, NUM_CLASSES)
  r = config.data.resolution
  z, labels = jnp.zeros((1, config.model.latent_dim)), jnp.zeros((1, 2), jnp.int32)
  fake = jax.eval_shape(lambda: g.apply(g.init(jax.random.PRNGKey(0), z, labels, train=False),
                                        z, labels, train=False))
  assert fake.shape == (1, r, r, 3)
  assert d.resolution == r
