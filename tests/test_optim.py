import numpy as np
import pytest

from configs import default
from gan import optim


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
