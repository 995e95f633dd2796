"""`synthetic_products`: the embedded default catalogue, rendered offline and deterministically.

Each example is one product photo from `gan.data.render` with its attributes as ClassLabels.
Attributes are drawn uniformly and independently per example, and every example is rendered
from its own seed `[config.seed, split_id, index]`, so the dataset does not depend on the
order in which examples are generated and two builds are identical.

  import gan.data  # registers the builder
  ds = tfds.load('synthetic_products/tiny', split='train', data_dir=...)

Versions: 1.1.0 (the default) adds the `material` attribute (fabric, plastic, metal, leather;
gan/data/materials.py). 1.0.0 (category, colour, pattern; one satin surface) stays buildable and
loadable, image for image as it was, as `synthetic_products:1.0.0` or
`synthetic_products/tiny:1.0.0`: runs trained on it resume and evaluate against it with
`--config.data.name=synthetic_products:1.0.0`.
"""
import dataclasses

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from gan.data import render

_DESCRIPTION = """\
Synthetic product photos for controllable GAN training: a product silhouette (t-shirt,
trousers, dress, handbag, sneaker, mug, bottle, lamp) in one of a fixed palette of CSS
colours, one of four patterns (solid, striped, dotted, checked) and (from 1.1.0) one of four
materials told apart by shading and texture, not hue (matte woven fabric, glossy plastic,
polished metal, grained and stitched leather), on a light studio background with a soft drop
shadow. Nuisance factors (scale, offset, small rotation, lighting, background tone,
per-category shape details, material details) vary per image. Rendered procedurally with
numpy; no download.
"""

# The first version with the `material` attribute.
_MATERIAL_VERSION = '1.1.0'

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

  VERSION = tfds.core.Version(_MATERIAL_VERSION)
  # Older versions a data_dir may hold, or that can still be built: `synthetic_products:1.0.0`.
  SUPPORTED_VERSIONS = [tfds.core.Version('1.0.0')]
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: 8 categories, 12 colours, 4 patterns, 64x64 images.',
      '1.1.0': 'A `material` attribute (fabric, plastic, metal, leather), drawn per example; '
               'the 128px config.',
  }
  BUILDER_CONFIGS = [
      SyntheticProductsConfig(
          name='default', description='20000 train / 2000 test images, 64x64.',
          num_train=20000, num_test=2000),
      SyntheticProductsConfig(
          name='tiny', description='512 train / 128 test images, 64x64, for tests.',
          num_train=512, num_test=128),
      SyntheticProductsConfig(
          name='128px', description='20000 train / 2000 test images, 128x128, for accelerators '
          '(train with --config.data.resolution=128).',
          num_train=20000, num_test=2000, image_size=128),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  # TFDS 4.9.x finds a builder's source through `importlib_resources`, which it only declares
  # as a dependency for Python < 3.9, so the lookup crashes on newer Pythons without that
  # backport. The answer is simply this file.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(__file__)

  def download_and_prepare(self, *args, **kwargs):
    """Also builds 1.0.0. TFDS only generates the newest version, so that newer code cannot
    build old data wrongly; this builder still renders 1.0.0 exactly (make_example with
    material=False), so a fresh machine can rebuild the data of runs trained on it."""
    if self.version == self.canonical_version:
      return super().download_and_prepare(*args, **kwargs)
    self.__dict__['canonical_version'] = self.version  # A cached_property: this shadows it.
    try:
      return super().download_and_prepare(*args, **kwargs)
    finally:
      del self.__dict__['canonical_version']

  @property
  def has_material(self) -> bool:
    return self.version >= _MATERIAL_VERSION

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    features = {
        'image': tfds.features.Image(shape=(size, size, 3)),
        'category': tfds.features.ClassLabel(names=list(render.CATEGORIES)),
        'colour': tfds.features.ClassLabel(names=list(render.COLOURS)),
        'pattern': tfds.features.ClassLabel(names=list(render.PATTERNS)),
    }
    if self.has_material:
      features['material'] = tfds.features.ClassLabel(names=list(render.MATERIALS))
    return tfds.core.DatasetInfo(
        builder=self,
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict(features),
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
      yield index, make_example(config.seed, _SPLIT_IDS[split], index, config.image_size,
                                self.has_material)


def make_example(seed: int, split_id: int, index: int, size: int = 64, material: bool = True):
  """The example at `index` of a split: attributes and image, from its own seed.

  material=False gives the 1.0.0 example (no material, the satin surface), exactly as before:
  the material is drawn after the other attributes, so they are the same in both versions.
  """
  rng = np.random.default_rng([seed, split_id, index])
  example = {'category': int(rng.integers(len(render.CATEGORIES))),
             'colour': int(rng.integers(len(render.COLOURS))),
             'pattern': int(rng.integers(len(render.PATTERNS)))}
  if material:
    example['material'] = int(rng.integers(len(render.MATERIALS)))
  example['image'] = render.render_product(example['category'], example['colour'],
                                           example['pattern'], rng, size,
                                           example.get('material'))
  return example
