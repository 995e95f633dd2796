"""DCGAN (Radford et al. 2016), 64x64, batch-norm D, non-saturating loss, conditioned on the
embedded synthetic product catalogue's category/colour/pattern. Runs in <= 30 min on 2 CPU cores."""
from configs import default


def get_config():
  config = default.get_config()
  config.num_train_steps = 3000
  config.log_every_steps = 50
  config.sample_every_steps = 500
  config.checkpoint_every_steps = 500
  return config
