"""Model registry: configs choose generator and discriminator by name.

Each entry is a factory (model config, resolution, num_classes, axis_name) -> flax module, so
every model reads its own config fields. Every module built implements the model interface
(gan/models/interface.py), checked here: a model that lacks part of it fails with an error naming
what is missing, before any work is done.
"""
import ml_collections

from gan.models import biggan, dcgan, interface
from gan.registry import Registry

GENERATORS = Registry('generator')
DISCRIMINATORS = Registry('discriminator')


@GENERATORS.register('dcgan')
def _dcgan_generator(m, resolution, num_classes, axis_name):
  dcgan.num_resampling_layers(resolution)  # A bad resolution fails here, not mid-run.
  return dcgan.DCGANGenerator(
      latent_dim=m.latent_dim, resolution=resolution, width=m.g_width, num_classes=num_classes,
      embed_dim=m.embed_dim, upsample_impl=m.upsample_impl, axis_name=axis_name,
      latent_in_every_layer=bool(m.get('latent_in_every_layer', False)))


@DISCRIMINATORS.register('dcgan')
def _dcgan_discriminator(m, resolution, num_classes, axis_name):
  if m.d_norm not in dcgan.D_NORMS:
    raise ValueError(f'Unknown discriminator normalisation {m.d_norm!r}. '
                     f'Valid d_norm names: {", ".join(dcgan.D_NORMS)}.')
  heads_read = m.get('aux_head_features', 'last')
  if heads_read not in dcgan.AUX_HEAD_FEATURES:
    raise ValueError(f'Unknown model.aux_head_features {heads_read!r}. '
                     f'Valid: {", ".join(dcgan.AUX_HEAD_FEATURES)}.')
  dcgan.num_resampling_layers(resolution)
  return dcgan.DCGANDiscriminator(
      resolution=resolution, width=m.d_width, num_classes=num_classes, norm=m.d_norm,
      downsample_impl=m.downsample_impl, axis_name=axis_name,
      aux_classifier=bool(m.get('aux_classifier', False) and num_classes),
      aux_head_features=heads_read, aux_net_width=int(m.get('aux_net_width', 16)))


def _dtype(m):
  name = m.get('dtype', 'float32')
  if name not in biggan.DTYPES:
    raise ValueError(f'Unknown model.dtype {name!r}. Valid: {", ".join(biggan.DTYPES)}.')
  return biggan.DTYPES[name]


def _multipliers(m):
  multipliers = m.get('channel_multipliers', None)
  return None if multipliers is None else tuple(multipliers)


@GENERATORS.register('biggan')
def _biggan_generator(m, resolution, num_classes, axis_name):
  return biggan.BigGANGenerator(
      latent_dim=m.latent_dim, resolution=resolution, width=m.ch, num_classes=num_classes,
      embed_dim=m.embed_dim, channel_multipliers=_multipliers(m),
      attention_resolution=m.attention_resolution, axis_name=axis_name, dtype=_dtype(m))


@DISCRIMINATORS.register('biggan')
def _biggan_discriminator(m, resolution, num_classes, axis_name):
  del axis_name  # No BatchNorm in D.
  if m.get('aux_head_features', 'last') != 'last':
    raise ValueError('model.aux_head_features applies to the dcgan discriminator only; biggan\'s '
                     'heads read its last block. Leave it at \'last\'.')
  return biggan.BigGANDiscriminator(
      resolution=resolution, width=m.ch, num_classes=num_classes,
      channel_multipliers=_multipliers(m), attention_resolution=m.attention_resolution,
      aux_classifier=bool(m.get('aux_classifier', False) and num_classes), dtype=_dtype(m))


def build_models(config: ml_collections.ConfigDict, num_classes, axis_name=None):
  """(generator, discriminator) modules for `config`; num_classes per conditioned attribute."""
  m = config.model
  num_classes = tuple(num_classes) if m.conditional else ()
  resolution = config.data.resolution
  generator = GENERATORS.get(m.generator)(m, resolution, num_classes, axis_name)
  discriminator = DISCRIMINATORS.get(m.discriminator)(m, resolution, num_classes, axis_name)
  interface.check_generator(generator, m.generator)
  interface.check_discriminator(discriminator, m.discriminator)
  interface.check_built(generator, discriminator, m.latent_dim, resolution)
  return generator, discriminator
