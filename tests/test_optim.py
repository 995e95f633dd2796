import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from gan import optim
from gan.models import build_models, interface


@pytest.mark.parametrize('warmup', [0, 10])
def test_decay_reaches_zero_at_the_last_step_and_leaves_the_rest_alone(warmup):
  schedule = optim.learning_rate_schedule(1e-3, warmup_steps=warmup, num_steps=100,
                                          decay_fraction=0.25)
  if warmup:
    np.testing.assert_allclose(schedule(0), 0.0)
    np.testing.assert_allclose(schedule(5), 5e-4)
  np.testing.assert_allclose([schedule(s) for s in (warmup, 50, 75)], 1e-3)
  np.testing.assert_allclose(schedule(87.5), 5e-4, rtol=1e-6)  # Halfway down the last quarter.
  np.testing.assert_allclose(schedule(100), 0.0, atol=1e-12)


def test_no_decay_is_the_constant_rate():
  schedule = optim.learning_rate_schedule(2e-4, num_steps=100)
  np.testing.assert_allclose([schedule(s) for s in (0, 99, 100)], 2e-4)


@pytest.mark.parametrize('fraction,warmup,match', [(1.5, 0, r'decay_fraction must be in \[0, 1\]'),
                                                   (0.5, 60, 'runs into the decay')])
def test_bad_schedules_are_refused(fraction, warmup, match):
  with pytest.raises(ValueError, match=match):
    optim.learning_rate_schedule(1e-3, warmup_steps=warmup, num_steps=100,
                                 decay_fraction=fraction)


def test_both_networks_follow_the_config():
  config = default.get_config()
  config.num_train_steps = 40
  config.optim.decay_fraction = 0.5
  (_, g_schedule), (_, d_schedule) = optim.build_optimizers(config)
  np.testing.assert_allclose([g_schedule(20), d_schedule(30)], [2e-4, 1e-4], rtol=1e-6)


def _one_d_update(config):
  """The first Adam update of D's parameters for a gradient of ones (~ -lr per element)."""
  _, d = build_models(config, (3, 2))
  params = d.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)), jnp.zeros((1, 2), jnp.int32),
                  train=False)['params']
  _, (d_tx, _) = optim.build_optimizers(config)
  state = d_tx.init(params)
  updates, _ = d_tx.update(jax.tree_util.tree_map(jnp.ones_like, params), state, params)
  return jax.tree_util.tree_flatten_with_path(updates)[0], state


def test_the_heads_can_learn_faster_than_the_rest_of_d():
  config = default.get_config()
  config.data.resolution = 16
  config.model.d_width = 4
  config.model.aux_head_features = 'own'
  config.model.aux_net_width = 2
  config.optim.aux_lr_scale = 10.0
  updates, _ = _one_d_update(config)
  for path, update in updates:
    expected = 10 * config.optim.d_lr if interface.is_attribute_head(path) else config.optim.d_lr
    np.testing.assert_allclose(np.asarray(update), -expected, rtol=1e-3)
  assert {interface.is_attribute_head(p) for p, _ in updates} == {True, False}


def test_unit_head_scale_keeps_plain_adam_and_bad_scales_are_refused():
  config = default.get_config()
  config.data.resolution = 16
  config.model.d_width = 4
  _, state = _one_d_update(config)  # Plain Adam's state: checkpoints of older runs still restore.
  assert type(state[0]).__name__ == 'ScaleByAdamState'
  config.optim.aux_lr_scale = 0.0
  with pytest.raises(ValueError, match='aux_lr_scale must be > 0'):
    optim.build_optimizers(config)
