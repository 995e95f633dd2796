"""Model registry: configs choose generator and discriminator by name."""
import ml_collections

from gan.models import dcgan
from gan.registry import Registry

GENERATORS = Registry('generator')
DISCRIMINATORS = Registry('discriminator')
D_NORMS = ('batch', 'spectral', 'none')

GENERATORS.register('dcgan')(dcgan.DCGANGenerator)
DISCRIMINATORS.register('dcgan')(dcgan.DCGANDiscriminator)


def build_models(config: ml_collections.ConfigDict, num_classes, axis_name=None):
  """(generator, discriminator) modules for `config`; num_classes per conditioned attribute."""
  m = config.model
  if m.d_norm not in D_NORMS:
    raise ValueError(f'Unknown discriminator normalisation {m.d_norm!r}. '
                     f'Valid d_norm names: {", ".join(D_NORMS)}.')
  num_classes = tuple(num_classes) if m.conditional else ()
  resolution = config.data.resolution
  generator = GENERATORS.get(m.generator)(
      resolution=resolution, width=m.g_width, num_classes=num_classes, embed_dim=m.embed_dim,
      upsample_impl=m.upsample_impl, axis_name=axis_name,
      latent_in_every_layer=bool(m.get('latent_in_every_layer', False)))
  discriminator = DISCRIMINATORS.get(m.discriminator)(
      resolution=resolution, width=m.d_width, num_classes=num_classes, norm=m.d_norm,
      downsample_impl=m.downsample_impl, axis_name=axis_name,
      aux_classifier=bool(m.get('aux_classifier', False) and num_classes))
  return generator, discriminator
