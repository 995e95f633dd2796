"""A few hundred product photos: DiffAugment (Zhao et al. 2020) inside the train step keeps D from
memorising the small set; spectral-norm D + hinge loss for stability. Use like configs/catalog.py."""
from configs import catalog


def get_config():
  config = catalog.get_config()
  config.diffaug = 'color,translation,cutout'
  config.model.d_norm = 'spectral'
  config.loss = 'hinge'
  config.optim.g_b1 = config.optim.d_b1 = 0.0
  config.optim.g_b2 = config.optim.d_b2 = 0.9
  config.batch_size = 32
  return config
