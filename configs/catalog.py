"""Train on your own catalogue, built with
  python -m gan.data.catalog build --source PHOTOS --data-dir OUT [--csv attrs.csv]
then
  python -m gan.main --config=configs/catalog.py --config.data.data_dir=OUT [--config.data.name=NAME]

Conditions on every attribute column of the catalogue. Flips/zooms are safe augmentations for
product photos; colour-changing ops are refused while colour is conditioned.
"""
from configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'catalog'            # The --name given to `gan.data.catalog build`.
  config.data.augment = ('flip', 'zoom(max_scale=1.1)')
  config.num_train_steps = 20_000
  config.eval_every_steps = 5000
  # Variety within a condition, as in configs/dcgan_products.py: without these the generator
  # draws one image per condition (experiments/RESULTS.md, "Diversity"; real photos too).
  config.model.latent_in_every_layer = True
  config.mode_seeking_weight = 1.0
  return config
