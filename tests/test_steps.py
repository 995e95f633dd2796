"""The pmapped train step: device-count invariance, spectral norm, divergence guard."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan import optim, parallel, steps
from gan import state as state_lib
from gan.models import build_models
from tests.conftest import tiny_config

NUM_CLASSES = (3, 4)


def _setup(config):
  g, d = build_models(config, NUM_CLASSES, axis_name=parallel.AXIS)
  (g_tx, g_s), (d_tx, d_s) = optim.build_optimizers(config)
  state = state_lib.create_state(config, g, d, g_tx, d_tx, NUM_CLASSES, config.seed)
  step = steps.make_train_step(config, g, d, g_tx, d_tx, g_s, d_s, NUM_CLASSES)
  return state, step


def _batch(config, seed=0):
  rng = np.random.default_rng(seed)
  r = config.data.resolution
  return {'image': rng.uniform(-1, 1, (config.batch_size, r, r, 3)).astype(np.float32),
          'labels': np.stack([rng.integers(0, n, config.batch_size) for n in NUM_CLASSES],
                             1).astype(np.int32)}


def _run(config, num_devices, num_steps=2):
  state, step = _setup(config)
  devices = jax.local_devices()[:num_devices]
  p_step = jax.pmap(step, axis_name=parallel.AXIS, in_axes=(None, 0), out_axes=(None, None),
                    devices=devices)
  state = parallel.replicated(state, devices)
  for i in range(num_steps):
    batch = {k: v.reshape((num_devices, -1) + v.shape[1:]) for k, v in _batch(config, i).items()}
    state, metrics = p_step(state, batch)
  return jax.device_get(state), jax.device_get(metrics)


# Float32 sums are reduced in a different order when split across devices; after two Adam steps
# (whose first update is ~lr * sign(grad)) the parameters agree to ~1e-6 absolute.
ATOL = 2e-5


def assert_one_and_eight_devices_agree(config):
  """Two steps on 1 and on 8 devices give the same state and metrics; returns (fresh, trained)."""
  assert jax.local_device_count() >= 8, 'conftest forces 8 CPU devices'
  one, m1 = _run(config, 1)
  eight, m8 = _run(config, 8)
  assert int(one.step) == int(eight.step) == 2
  for a, b in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(eight)):
    np.testing.assert_allclose(a, b, atol=ATOL, rtol=1e-4)
  for k in m1:
    np.testing.assert_allclose(m1[k], m8[k], atol=1e-4, rtol=1e-4)
  # And training actually moved the parameters.
  fresh, _ = _setup(config)
  moved = [float(np.max(np.abs(a - b))) for a, b in
           zip(jax.tree_util.tree_leaves(fresh.g_params), jax.tree_util.tree_leaves(one.g_params))]
  assert max(moved) > 1e-4
  return fresh, one


@pytest.mark.parametrize('overrides', [
    {},  # DCGAN: batch-norm D (cross-replica BN), non-saturating loss.
    # Spectral-norm D, hinge loss, two D steps per G step; z in every conditional BN.
    {'model.d_norm': 'spectral', 'loss': 'hinge', 'd_steps_per_g_step': 2,
     'model.latent_in_every_layer': True},
    # The heads' own network (cross-replica BatchNorm) with its own learning rate.
    {'model.aux_head_features': 'own', 'model.aux_net_width': 2, 'optim.aux_lr_scale': 10.0},
])
def test_one_device_and_eight_devices_give_the_same_parameters(overrides):
  assert_one_and_eight_devices_agree(tiny_config(**overrides))


def test_auxiliary_classifier_loss_is_reported_and_optional():
  _, with_aux = _run(tiny_config(), 2, num_steps=1)
  assert with_aux['d_class_loss'] > 0 and with_aux['g_class_loss'] > 0
  # D's heads' accuracy per attribute, on real images and on G's fakes, named by index by default.
  for prefix in ('d_heads_real_acc', 'd_heads_fake_acc'):
    for a in range(len(NUM_CLASSES)):
      assert 0.0 <= with_aux[f'{prefix}/{a}'] <= 1.0
  _, without = _run(tiny_config(aux_classifier_weight=0.0), 2, num_steps=1)
  assert 'd_class_loss' not in without and 'g_class_loss' not in without
  assert not any(k.startswith('d_heads_') for k in without)
  with pytest.raises(ValueError, match='aux_classifier=True'):
    _setup(tiny_config(**{'model.aux_classifier': False}))


def test_pair_conditions_repeats_the_first_half():
  labels = jnp.arange(14).reshape(7, 2)
  paired = np.asarray(steps.pair_conditions(labels))
  np.testing.assert_array_equal(paired[:3], paired[3:6])
  np.testing.assert_array_equal(paired[6], [12, 13])  # an odd one out keeps its own label


def _mode_seeking_ratios(weight, num_steps=6):
  # A high G learning rate so a few steps show where the term pushes.
  config = tiny_config(mode_seeking_weight=weight, aux_classifier_weight=0.0,
                       **{'optim.g_lr': 5e-3})
  state, step = _setup(config)
  p_step = steps.pmap_train_step(step)
  state = parallel.replicated(state)
  ratios = []
  for i in range(num_steps):
    batch = {k: v.reshape((jax.local_device_count(), -1) + v.shape[1:])
             for k, v in _batch(config, i).items()}
    state, metrics = p_step(state, batch)
    ratios.append(float(metrics['g_mode_seeking_ratio']))
  return ratios


def test_mode_seeking_term_spreads_the_images_of_one_condition():
  """Two latents under one label: with the term on, G's images of them move apart faster."""
  with_term = _mode_seeking_ratios(50.0)
  barely = _mode_seeking_ratios(1e-6)  # the ratio is still measured, its pull is negligible
  assert with_term[0] == pytest.approx(barely[0], rel=1e-4)  # same start
  assert with_term[-1] > 1.3 * barely[-1], (with_term, barely)
  _, plain = _run(tiny_config(), 2, num_steps=1)
  assert 'g_mode_seeking_ratio' not in plain
  with pytest.raises(ValueError, match='mode_seeking_weight must be >= 0'):
    _setup(tiny_config(mode_seeking_weight=-1.0))
  with pytest.raises(ValueError, match='mode_seeking_pool must be a positive divisor'):
    _setup(tiny_config(mode_seeking_weight=1.0, mode_seeking_pool=3))


def test_pooled_mode_seeking_distance_ignores_fine_texture():
  """A 2-pixel checkerboard flip is a large pixel distance but none after 2x2 pooling; a shift of
  the whole image's tone counts the same either way."""
  from gan import losses
  checks = np.indices((8, 8)).sum(axis=0) % 2 * 2.0 - 1.0
  a = jnp.asarray(checks[None, :, :, None])
  z_a, z_b = jnp.zeros((1, 4)), jnp.ones((1, 4))
  assert float(losses.mode_seeking_ratio(a, -a, z_a, z_b)) == pytest.approx(2.0)
  assert float(losses.mode_seeking_ratio(a, -a, z_a, z_b, pool=2)) == pytest.approx(0.0)
  assert float(losses.mode_seeking_ratio(a, a + 0.5, z_a, z_b, pool=4)) == pytest.approx(0.5)


def test_auxiliary_heads_learn_the_real_attributes():
  """A few D updates on one fixed batch drive D's heads' cross-entropy far below chance."""
  config = tiny_config(**{'optim.d_lr': 1e-2})
  state, step = _setup(config)
  p_step = jax.pmap(step, axis_name=parallel.AXIS, in_axes=(None, 0), out_axes=(None, None),
                    devices=jax.local_devices()[:1])
  batch = _batch(config)
  # Make the attributes visible: channel a of each image is set by its attribute a.
  for a, n in enumerate(NUM_CLASSES):
    batch['image'][..., a] = (batch['labels'][:, a, None, None] / (n - 1) * 2 - 1)
  batch = {k: v[None] for k, v in batch.items()}
  losses = []
  for _ in range(40):
    state, metrics = p_step(state, batch)
    losses.append(float(metrics['d_class_loss']))
  chance = np.mean(np.log(NUM_CLASSES))
  assert losses[0] > 0.8 * chance
  assert losses[-1] < 0.4 * chance, losses


@pytest.mark.parametrize('loss', ['wasserstein', 'least_squares'])
def test_other_losses_train(loss):
  config = tiny_config(loss=loss, r1_weight=1.0 if loss == 'least_squares' else 0.0)
  state, metrics = _run(config, 2, num_steps=1)
  assert int(state.step) == 1 and metrics['finite'] == 1.0
  assert ('gradient_penalty' in metrics) == (loss == 'wasserstein')
  assert ('r1_penalty' in metrics) == (loss == 'least_squares')


def test_non_finite_update_is_refused():
  config = tiny_config()
  state, step = _setup(config)
  p_step = jax.pmap(step, axis_name=parallel.AXIS, in_axes=(None, 0), out_axes=(None, None),
                    devices=jax.local_devices()[:2])
  batch = _batch(config)
  batch['image'][0, 0, 0, 0] = np.nan
  batch = {k: v.reshape((2, -1) + v.shape[1:]) for k, v in batch.items()}
  new_state, metrics = p_step(state, batch)
  assert metrics['finite'] == 0.0
  assert int(new_state.step) == 0
  for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(new_state)):
    np.testing.assert_array_equal(a, b)


def test_spectral_norm_estimate_converges_to_true_top_singular_value():
  layer = nn.SpectralNorm(nn.Dense(7, use_bias=False), n_steps=1)
  x = jnp.ones((1, 11))
  variables = layer.init(jax.random.PRNGKey(0), x, update_stats=True)
  kernel = np.asarray(variables['params']['layer_instance']['kernel'])
  true_sigma = np.linalg.svd(kernel, compute_uv=False)[0]
  stats = variables['batch_stats']
  errors = []
  for _ in range(30):  # One power iteration per training step, as in training.
    _, updates = layer.apply({'params': variables['params'], 'batch_stats': stats}, x,
                             update_stats=True, mutable=['batch_stats'])
    stats = updates['batch_stats']
    sigma = float(stats['layer_instance/kernel/sigma'])
    errors.append(abs(sigma - true_sigma) / true_sigma)
  assert errors[-1] < 1e-3 < errors[0]
  # The normalised kernel has top singular value 1.
  out = layer.apply({'params': variables['params'], 'batch_stats': stats}, jnp.eye(11),
                    update_stats=False)
  assert abs(np.linalg.svd(np.asarray(out), compute_uv=False)[0] - 1.0) < 1e-3


def test_batch_size_must_divide_device_count():
  with pytest.raises(ValueError, match='multiple of the number of devices'):
    parallel.per_device_batch_size(12)


def test_ema_decay_warms_up_then_caps():
  np.testing.assert_allclose(steps.ema_decay(jnp.array(0), 0.999), 0.1, rtol=1e-6)
  np.testing.assert_allclose(steps.ema_decay(jnp.array(90), 0.999), 91 / 100, rtol=1e-6)
  np.testing.assert_allclose(steps.ema_decay(jnp.array(100_000), 0.999), 0.999, rtol=1e-6)
  assert float(steps.ema_decay(jnp.array(3), 0.999, start_step=5)) == 0.0  # copies G until then
