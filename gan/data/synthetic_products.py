"""`synthetic_products`: the embedded default catalogue, rendered offline and deterministically.

Each example is one product photo from `gan.data.render` with its attributes as ClassLabels.
Attributes are drawn uniformly and independently per example, and every example is rendered
from its own seed `[config.seed, split_id, index]`, so the dataset does not depend on the
order in which examples are generated and two builds are identical.

  import gan.data  # registers the builder
  ds = tfds.load('synthetic_products/tiny', split='train', data_dir=...)
"""
import dataclasses

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from gan.data import render

_DESCRIPTION = """\
Synthetic product photos for controllable GAN training: a product silhouette (t-shirt,
trousers, dress, handbag, sneaker, mug, bottle, lamp) in one of a fixed palette of CSS
colours and one of four patterns (solid, striped, dotted, checked), on a light studio
background with a soft drop shadow. Nuisance factors (scale, offset, small rotation,
lighting, background tone, per-category shape details) vary per image. Rendered
procedurally with numpy; no download.
"""

# Split ids are part of the per-example seed: never renumber them.
_SPLIT_IDS = {'train': 0, 'test': 1}


@dataclasses.dataclass(eq=False)
class SyntheticProductsConfig(tfds.core.BuilderConfig):
  """Size and seed of a synthetic catalogue.

  Attributes:
    num_train: examples in the `train` split.
    num_test: examples in the `test` split.
    seed: base seed; example i of a split is rendered from [seed, split_id, i].
    image_size: height and width of the images.
  """
  num_train: int = 20000
  num_test: int = 2000
  seed: int = 0
  image_size: int = 64

  def __post_init__(self):
    for field in ('num_train', 'num_test', 'image_size'):
      value = getattr(self, field)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f'SyntheticProductsConfig.{field} must be a positive int, got {value!r}.')
    if not isinstance(self.seed, int) or self.seed < 0:
      raise ValueError(f'SyntheticProductsConfig.seed must be an int >= 0, got {self.seed!r}.')


class SyntheticProducts(tfds.core.GeneratorBasedBuilder):
  """Procedurally rendered product photos with category / colour / pattern labels."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: 8 categories, 12 colours, 4 patterns, 64x64 images.',
  }
  BUILDER_CONFIGS = [
      SyntheticProductsConfig(
          name='default', description='20000 train / 2000 test images, 64x64.',
          num_train=20000, num_test=2000),
      SyntheticProductsConfig(
          name='tiny', description='512 train / 128 test images, 64x64, for tests.',
          num_train=512, num_test=128),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  # TFDS 4.9.x finds a builder's source through `importlib_resources`, which it only declares
  # as a dependency for Python < 3.9, so the lookup crashes on newer Pythons without that
  # backport. The answer is simply this file.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    return tfds.core.DatasetInfo(
        builder=self,
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(size, size, 3)),
            'category': tfds.features.ClassLabel(names=list(render.CATEGORIES)),
            'colour': tfds.features.ClassLabel(names=list(render.COLOURS)),
            'pattern': tfds.features.ClassLabel(names=list(render.PATTERNS)),
        }),
        supervised_keys=None,
        # The palette's RGB values, so evaluation can check generated colours.
        metadata=tfds.core.MetadataDict(
            colour_rgb={name: list(rgb) for name, rgb in render.COLOURS.items()}),
    )

  def _split_generators(self, dl_manager):
    """Nothing to download: the splits are rendered."""
    del dl_manager
    config = self.builder_config
    return {
        'train': self._generate_examples('train', config.num_train),
        'test': self._generate_examples('test', config.num_test),
    }

  def _generate_examples(self, split: str, num_examples: int):
    config = self.builder_config
    for index in range(num_examples):
      yield index, make_example(config.seed, _SPLIT_IDS[split], index, config.image_size)


def make_example(seed: int, split_id: int, index: int, size: int = 64):
  """The example at `index` of a split: attributes and image, from its own seed."""
  rng = np.random.default_rng([seed, split_id, index])
  category = int(rng.integers(len(render.CATEGORIES)))
  colour = int(rng.integers(len(render.COLOURS)))
  pattern = int(rng.integers(len(render.PATTERNS)))
  image = render.render_product(category, colour, pattern, rng, size)
  return {'image': image, 'category': category, 'colour': colour, 'pattern': pattern}
