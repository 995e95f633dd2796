"""Every shipped config loads, and its optimisers and networks build (no data, no training)."""
import glob
import importlib
import os

import pytest

from gan import optim
from gan.models import build_models
from tests.conftest import REPO

CONFIGS = sorted(os.path.splitext(os.path.basename(p))[0]
                 for p in glob.glob(os.path.join(REPO, 'configs', '*.py'))
                 if not p.endswith('__init__.py'))


def test_the_list_is_not_empty():
  assert {'default', 'dcgan_products', 'catalog', 'biggan_products'} <= set(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name):
  config = importlib.import_module(f'configs.{name}').get_config()
  (_, g_schedule), (_, d_schedule) = optim.build_optimizers(config)
  assert float(g_schedule(0)) >= 0 and float(d_schedule(config.num_train_steps)) >= 0
  build_models(config, (8, 12, 4, 4))
