"""Model registry: configs choose generator and discriminator by name.

Every registered class implements the model interface (gan/models/interface.py): registration
checks it, and the tools use nothing else.
"""
import ml_collections

from gan.models import dcgan, interface

GENERATORS = interface.ModelRegistry('generator', interface.check_generator)
DISCRIMINATORS = interface.ModelRegistry('discriminator', interface.check_discriminator)

GENERATORS.register('dcgan')(dcgan.DCGANGenerator)
DISCRIMINATORS.register('dcgan')(dcgan.DCGANDiscriminator)


def build_models(config: ml_collections.ConfigDict, num_classes, axis_name=None):
  """(generator, discriminator) modules for `config`; num_classes per conditioned attribute."""
  m = config.model
  num_classes = tuple(num_classes) if m.conditional else ()
  generator = GENERATORS.get(m.generator).from_config(config, num_classes, axis_name)
  discriminator = DISCRIMINATORS.get(m.discriminator).from_config(config, num_classes, axis_name)
  interface.check_built(generator, discriminator, m.latent_dim, config.data.resolution)
  return generator, discriminator
