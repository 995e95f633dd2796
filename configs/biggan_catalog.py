"""BigGAN-class networks on your own product photos (64 px), with DiffAugment inside the step so
D does not memorise a small catalogue. Build the catalogue and train as configs/catalog.py says:
  python -m gan.main --config=configs/biggan_catalog.py --config.data.data_dir=OUT

DiffAugment is 'translation,cutout' without 'color': D's projection and attribute heads read the
colour of what they see, and colour is usually a conditioned attribute of a catalogue.
"""
from configs import biggan_products, catalog


def get_config():
  config = catalog.get_config()
  products = biggan_products.get_config()
  for field in ('model', 'optim', 'loss', 'batch_size', 'attribute_dropout', 'ema_decay',
                'mode_seeking_weight'):
    config[field] = products[field]
  config.diffaug = 'translation,cutout'
  config.num_train_steps = 20_000
  config.eval_every_steps = 2500
  config.eval.num_samples = 1000
  return config
