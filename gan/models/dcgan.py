"""DCGAN generator and discriminator (Radford et al. 2016), conditional on product attributes.

With no attributes these are exactly the classic 64x64 DCGAN networks (same parameter count as
the PyTorch reference). Resolution r >= 8 (power of two) uses log2(r) - 2 up/down-sampling layers.
Both implement the model interface (gan/models/interface.py); the parameter names below are this
module's own business, read nowhere else.
"""
import math
from typing import Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from gan.models import downconv, upconv
from gan.models.interface import ATTRIBUTE_HEADS, FEATURES, INTERMEDIATES
from gan.models.layers import (AttributeEmbedding, AttributeNetwork, ConditionalBatchNorm,
                               ProjectionHead)

_INIT = nn.initializers.normal(0.02)  # DCGAN's N(0, 0.02) weight init.


def num_resampling_layers(resolution: int) -> int:
  if resolution < 8 or resolution & (resolution - 1):
    raise ValueError(f'The DCGAN networks need a power-of-two resolution >= 8, got {resolution}. '
                     'Set --config.data.resolution to 8, 16, 32, 64, 128, ...')
  return int(math.log2(resolution)) - 2


def _impl(registry, name, default):
  return registry.get(default if name == 'default' else name)


D_NORMS = ('batch', 'spectral', 'none')
FIRST_LAYER = 'project'   # The Dense on [z, attribute embedding] that makes the 4x4 map.
NORM_PREFIX = 'norm_'     # The conditional BatchNorms: norm_<i>/{gamma,beta}, fed [z, embedding].


class DCGANGenerator(nn.Module):
  latent_dim: int = 100
  resolution: int = 64
  width: int = 64
  num_classes: Sequence[int] = ()
  embed_dim: int = 128
  out_channels: int = 3
  upsample_impl: str = 'default'
  axis_name: Optional[str] = None
  bn_momentum: float = 0.9
  # Feed z to every conditional BatchNorm too (BigGAN's skip-z), not only to the first layer.
  # With the attribute embedding modulating every layer and z entering once, the generator
  # learned to ignore z (one image per condition); a per-layer path keeps z's influence.
  latent_in_every_layer: bool = False

  def latent_weight(self, variables) -> np.ndarray:
    """Every kernel part that multiplies z (the interface's SeFa weight): [latent_dim, k].

    z comes first in each layer's [z, attributes] input, so its rows are the first latent_dim:
    the first layer's always, and with latent_in_every_layer each conditional BatchNorm's gain
    and bias kernels' too. (No spectral norm in this G: the kernels are applied as they are.)
    """
    d, params = self.latent_dim, variables['params']
    kernels = [params[FIRST_LAYER]['kernel']]
    if self.latent_in_every_layer:
      norms = sorted((k for k in params if k.startswith(NORM_PREFIX)),
                     key=lambda k: int(k[len(NORM_PREFIX):]))
      kernels += [params[name][head]['kernel'] for name in norms for head in ('gamma', 'beta')]
    return np.concatenate([np.asarray(k, np.float64)[:d] for k in kernels], axis=1)

  @nn.compact
  def __call__(self, z, labels, train: bool = True):
    if z.shape[-1] != self.latent_dim:
      raise ValueError(f'The generator takes z of length latent_dim={self.latent_dim}; got shape '
                       f'{z.shape}.')
    n_up = num_resampling_layers(self.resolution)
    channels = self.width * 2 ** (n_up - 1)
    cond = None
    if self.num_classes:
      cond = AttributeEmbedding(self.num_classes, self.embed_dim, name='attributes')(labels)
    norm_cond = cond
    if self.latent_in_every_layer:
      norm_cond = z if cond is None else jnp.concatenate([z, cond], axis=-1)
    norm = lambda h, i: nn.relu(ConditionalBatchNorm(self.bn_momentum, self.axis_name,
                                                     name=f'{NORM_PREFIX}{i}')(h, norm_cond, train))
    first_in = z if cond is None else jnp.concatenate([z, cond], axis=-1)
    # A 4x4 transposed conv on a 1x1 input is exactly a dense layer to 4*4*C.
    h = nn.Dense(4 * 4 * channels, use_bias=False, kernel_init=_INIT, name=FIRST_LAYER)(first_in)
    h = norm(h.reshape(z.shape[0], 4, 4, channels), 0)
    upsampler = _impl(upconv.UPSAMPLERS, self.upsample_impl, upconv.DEFAULT_UPSAMPLER)
    for i in range(1, n_up):
      channels //= 2
      h = norm(upsampler(channels, use_bias=False, kernel_init=_INIT, name=f'up_{i}')(h), i)
    h = upsampler(self.out_channels, use_bias=False, kernel_init=_INIT, name=f'up_{n_up}')(h)
    return jnp.tanh(h)


# Which features the AC-GAN heads read: the pooled last map, the pooled maps of every layer, or a
# small network of their own (layers.AttributeNetwork) that shares nothing with the trunk.
AUX_HEAD_FEATURES = ('last', 'all', 'own')


class DCGANDiscriminator(nn.Module):
  """Real/fake logit [N] (plus the projection term when conditional).

  With aux_classifier (and attributes) it returns (logit, class_logits): one [N, num_classes[a]]
  array per attribute from a linear head on the pooled last feature map (Odena et al. 2017's
  AC-GAN heads, here next to the projection term as in TAC-GAN/ReACGAN-style hybrids).
  """
  resolution: int = 64
  width: int = 64
  num_classes: Sequence[int] = ()
  norm: str = 'batch'  # 'batch' | 'spectral' | 'none'
  downsample_impl: str = 'default'
  axis_name: Optional[str] = None
  aux_classifier: bool = False  # Also return per-attribute class logits (AC-GAN heads).
  aux_head_features: str = 'last'  # What the heads read: one of AUX_HEAD_FEATURES.
  aux_net_width: int = 16  # First-stage channels of the heads' own network ('own').

  @nn.compact
  def __call__(self, x, labels, train: bool = True):
    pooled_per_layer = []  # Filled for aux_head_features='all' only.
    n_down = num_resampling_layers(self.resolution)
    downsampler = _impl(downconv.DOWNSAMPLERS, self.downsample_impl, downconv.DEFAULT_DOWNSAMPLER)
    h = x
    for i in range(n_down):
      layer = downsampler(self.width * 2 ** i, use_bias=False, kernel_init=_INIT, name=f'down_{i}')
      h = self._apply(layer, h, train, f'sn_down_{i}')
      self.sow(INTERMEDIATES, FEATURES, h)  # The interface's named features: each conv's output.
      if self.norm == 'batch' and i > 0:  # DCGAN: no BatchNorm on the first layer.
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                         axis_name=self.axis_name if train else None, name=f'bn_{i}')(h)
      h = nn.leaky_relu(h, 0.2)
      if self.aux_head_features == 'all':
        pooled_per_layer.append(jnp.mean(h, axis=(1, 2)))
    # The final 4x4 valid convolution to one logit is a dense layer on the flattened 4x4 map.
    out = self._apply(nn.Dense(1, use_bias=False, kernel_init=_INIT, name='logit'),
                      h.reshape(h.shape[0], -1), train, 'sn_logit')[:, 0]
    if not self.num_classes:
      return out
    features = jnp.sum(h, axis=(1, 2))
    out = out + ProjectionHead(self.num_classes, name='projection')(features, labels)
    if not self.aux_classifier:
      return out
    # 'all': the mean of every layer's map, so a head also sees fine texture (a 5 px check
    # against a dot) that the coarse 4x4 map has mostly averaged away.
    if self.aux_head_features == 'own':
      pooled = AttributeNetwork(self.aux_net_width, axis_name=self.axis_name,
                                name=f'{ATTRIBUTE_HEADS}_net')(x, train)
    elif pooled_per_layer:
      pooled = jnp.concatenate(pooled_per_layer, axis=-1)
    else:
      pooled = features / (h.shape[1] * h.shape[2])  # the last map's mean over positions
    class_logits = tuple(nn.Dense(n, kernel_init=_INIT, name=f'{ATTRIBUTE_HEADS}_{a}')(pooled)
                         for a, n in enumerate(self.num_classes))
    return out, class_logits

  def _apply(self, layer, h, train, sn_name):
    if self.norm == 'spectral':
      return nn.SpectralNorm(layer, name=sn_name)(h, update_stats=train)
    return layer(h)
