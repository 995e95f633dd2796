"""Conditioning layers shared by the generators and discriminators.

Label convention (see gan/data/vocab.py): labels are int [N, A]; value `num_classes[a]` means
"unspecified" for attribute a.
"""
from typing import Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp


def is_soft(labels) -> bool:
  """Soft labels (the model interface): a tuple/list of per-attribute probabilities [N, n_a]."""
  return isinstance(labels, (tuple, list))


def embed_attribute(embed: nn.Embed, labels, a: int, n: int):
  """Attribute a's embedding: a row lookup for int labels [N, A], or for soft labels the
  probability-weighted mix of its n value rows (the 'unspecified' row takes no part)."""
  if is_soft(labels):
    return labels[a] @ embed(jnp.arange(n))
  return embed(labels[:, a])


class AttributeEmbedding(nn.Module):
  """Concatenated per-attribute embeddings; each attribute has a learned 'unspecified' row.

  labels: int [N, A], or soft labels (see `embed_attribute`).
  """
  num_classes: Sequence[int]
  features: int

  @nn.compact
  def __call__(self, labels):
    parts = [embed_attribute(nn.Embed(n + 1, self.features, name=f'embed_{a}'), labels, a, n)
             for a, n in enumerate(self.num_classes)]
    return jnp.concatenate(parts, axis=-1)


class ConditionalBatchNorm(nn.Module):
  """BatchNorm whose scale and shift are predicted from a conditioning vector (de Vries et al. 2017).

  With cond=None it is a plain BatchNorm with learned scale and shift. `axis_name` makes the
  statistics cross-replica under pmap.
  """
  momentum: float = 0.9
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, cond, train: bool):
    conditional = cond is not None
    x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum, epsilon=1e-5,
                     use_scale=not conditional, use_bias=not conditional,
                     axis_name=self.axis_name if train else None, name='bn')(x)
    if not conditional:
      return x
    channels = x.shape[-1]
    # Gamma starts at 1 and beta at 0, so the layer starts as a plain BatchNorm.
    gamma = nn.Dense(channels, kernel_init=nn.initializers.zeros, name='gamma')(cond)
    beta = nn.Dense(channels, kernel_init=nn.initializers.zeros, name='beta')(cond)
    return x * (1.0 + gamma[:, None, None, :]) + beta[:, None, None, :]


class ProjectionHead(nn.Module):
  """Projection discriminator term (Miyato & Koyama 2018), summed over attributes.

  sum_a <embed_a(y_a), features>; an unspecified attribute contributes nothing, so a fully
  unspecified label gives the unconditional discriminator.
  """
  num_classes: Sequence[int]

  @nn.compact
  def __call__(self, features, labels):
    out = jnp.zeros(features.shape[:1], features.dtype)
    for a, n in enumerate(self.num_classes):
      label = labels[:, a]
      embedding = nn.Embed(n + 1, features.shape[-1], embedding_init=nn.initializers.normal(0.02),
                           name=f'project_{a}')(label)
      specified = (label < n).astype(features.dtype)
      out = out + specified * jnp.sum(embedding * features, axis=-1)
    return out


class ConvBlock(nn.Module):
  """3x3 conv -> BatchNorm -> ReLU (the judge's and the heads' own network's unit)."""
  features: int
  strides: int = 1
  axis_name: Optional[str] = None  # Cross-replica statistics under pmap (training only).

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.Conv(self.features, (3, 3), strides=(self.strides, self.strides), use_bias=False)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                     axis_name=self.axis_name if train else None)(x)
    return nn.relu(x)


class AttributeNetwork(nn.Module):
  """A small convolutional network of the AC-GAN heads' own, beside D's trunk: pooled features.

  D's trunk is shaped by the real/fake game and learns a fine attribute such as material slowly
  (its heads read real material 0.38 of the time at step 2100, chance 0.25; experiments/RESULTS.md,
  session 11), while a classifier with full-resolution 3x3 stages reads it 0.94 after 1000 steps.
  This one is such a classifier: the judge's stages (ConvBlock), with its own weights. BatchNorm
  because a GroupNorm/leaky-ReLU version learned pattern and material not at all in 1000 steps
  (RESULTS.md, session 12). Its running statistics also see D's pass over fakes; training never
  reads them (D runs in training mode), only eval-mode uses of D do.
  """
  width: int = 16
  stages: Sequence[int] = (1, 2, 4, 8)  # Channel multiplier per stage; each stage halves the size.
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, train: bool = True):
    h = ConvBlock(self.width, axis_name=self.axis_name)(x, train)
    for multiplier in self.stages:
      h = ConvBlock(self.width * multiplier, strides=2, axis_name=self.axis_name)(h, train)
      h = ConvBlock(self.width * multiplier, axis_name=self.axis_name)(h, train)
    return jnp.mean(h, axis=(1, 2))
