"""Spectral-norm discriminator (Miyato et al. 2018) with the hinge loss, DCGAN-shaped networks."""
from configs import default


def get_config():
  config = default.get_config()
  config.model.d_norm = 'spectral'
  config.loss = 'hinge'
  config.optim.d_lr = 4e-4            # TTUR: D learns faster, as in the SNGAN/BigGAN recipes.
  config.optim.g_lr = 1e-4
  config.optim.g_b1 = config.optim.d_b1 = 0.0
  config.optim.g_b2 = config.optim.d_b2 = 0.9
  config.num_train_steps = 3000
  config.log_every_steps = 50
  config.sample_every_steps = 500
  config.checkpoint_every_steps = 500
  return config
