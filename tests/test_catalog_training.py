"""A user's photo folder -> catalogue -> a few training steps with DiffAugment; vocabulary saved."""
import numpy as np
from PIL import Image

from configs import small_catalog
from gan import train
from gan.data import catalog, render
from gan.data.vocab import Vocabulary


def test_built_catalogue_trains_with_diffaugment(tmp_path):
  source = tmp_path / 'photos'
  rng = np.random.default_rng(0)
  for category in ('mug', 'lamp'):
    (source / category).mkdir(parents=True)
    c = render.CATEGORIES.index(category)
    for i in range(12):
      image = render.render_product(c, int(rng.integers(len(render.COLOURS))), 0, rng, size=40)
      Image.fromarray(image).save(source / category / f'{i}.jpg', quality=92)
  (source / 'mug' / 'broken.jpg').write_bytes(b'not a jpeg')
  data_dir = str(tmp_path / 'tfds')
  report = catalog.build_catalog(str(source), data_dir, name='my_shop', resolution=16,
                                 holdout=0.2)
  assert [s.reason for s in report.skipped] == ['corrupt']

  config = small_catalog.get_config()
  config.data.name, config.data.data_dir, config.data.resolution = 'my_shop', data_dir, 16
  config.batch_size, config.num_train_steps = 16, 2  # 2 per device: mode seeking pairs them.
  config.model.g_width = config.model.d_width = config.model.embed_dim = 8
  config.model.latent_dim = 16
  config.log_every_steps = config.sample_every_steps = config.checkpoint_every_steps = 2
  config.eval_every_steps = 0
  config.sample.standing_stats_batches = 1
  workdir = str(tmp_path / 'run')
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 2
  assert Vocabulary.load(workdir).attributes == (('category', ('lamp', 'mug')),)
