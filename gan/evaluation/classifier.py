"""Domain feature extractor: a small CNN attribute classifier.

Inception features describe ImageNet photos; a catalogue's own attributes
(category, colour, pattern, ...) are better judged by a network trained on the
catalogue. This module trains one such network and exposes

- its penultimate activations as a feature space for FID / KID /
  precision-recall / memorisation (`ClassifierBundle.features`), and
- its per-attribute predictions to score how well the generator obeys the
  requested attributes (`ClassifierBundle.predict` + `metrics.control_accuracy`).

Image convention (everywhere in this module): arrays [N, H, W, C], either
uint8 in [0, 255] or floats already in [-1, 1] (the generator's output
range). Floats outside [-1, 1] are rejected rather than guessed at; convert
[0, 1] images with `2 * x - 1`. Images whose size differs from the training
resolution are resized bilinearly (with antialiasing) to it.

Labels are int [N, A], one column per attribute; -1 marks an unknown value,
which is left out of the loss and of accuracies.

Files: `save_classifier(bundle, 'clf.msgpack')` writes one self-contained
msgpack (weights + metadata) and a human-readable `clf.json` copy of the
metadata next to it (each atomically, through gan.rundir); `load_classifier`
needs only the msgpack. Local paths and gs:// alike.
"""
import functools
import json
import logging
import os
from typing import Any, List, Sequence, Tuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from gan import rundir
from gan.models.layers import ConvBlock

FILE_FORMAT = 'productgan.attribute_classifier'
FILE_VERSION = 1
# Channel multiplier of each stage; every stage halves the resolution.
STAGE_MULTIPLIERS = (1, 2, 4, 8)


# ----------------------------------------------------------------------------- model


class AttributeClassifier(nn.Module):
  """Conv-BN-ReLU stages -> global average pool -> feature vector -> one head per attribute.

  Attributes:
    num_classes: number of values of each attribute (one linear head each).
    width: channels of the first stage; stage i has width * STAGE_MULTIPLIERS[i].
    feature_dim: size of the feature vector used for distribution metrics.

  Call with images in [-1, 1], [N, H, W, C]; returns (features [N, feature_dim],
  tuple of logits [N, num_classes[a]]).
  """
  num_classes: Sequence[int]
  width: int = 32
  feature_dim: int = 256

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = ConvBlock(self.width)(x, train)
    for mult in STAGE_MULTIPLIERS:
      x = ConvBlock(self.width * mult, strides=2)(x, train)
      x = ConvBlock(self.width * mult)(x, train)
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dense(self.feature_dim, use_bias=False)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
    features = nn.relu(x)
    logits = tuple(nn.Dense(n, name=f'head_{a}')(features) for a, n in enumerate(self.num_classes))
    return features, logits


# ----------------------------------------------------------------------------- images


def _check_images(images, name: str = 'images') -> np.ndarray:
  images = np.asarray(images)
  if images.ndim != 4:
    raise ValueError(f'{name} must be [N, H, W, C], got shape {images.shape}. Add a channel axis '
                     'to grayscale images.')
  if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
    raise ValueError(f'{name} must be uint8 in [0, 255] or floats in [-1, 1], got dtype '
                     f'{images.dtype}.')
  return images


def to_model_input(images: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1]; floats are checked to lie in [-1, 1]."""
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 127.5 - 1.0
  x = images.astype(np.float32, copy=False)
  lo, hi = float(x.min()), float(x.max())
  if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1.001 or hi > 1.001:
    raise ValueError(
        f'Float images must lie in [-1, 1], got values in [{lo:.4g}, {hi:.4g}]. Pass uint8 images, '
        'or convert [0, 1] floats with 2 * x - 1.')
  return x


def _resize(x, resolution: Tuple[int, int]):
  """Bilinear resize (antialiased) of [N, H, W, C] to resolution, inside jit."""
  if tuple(x.shape[1:3]) == tuple(resolution):
    return x
  return jax.image.resize(x, (x.shape[0], *resolution, x.shape[3]), 'bilinear', antialias=True)


def _check_labels(labels, num_images: int, num_classes: Sequence[int]) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.ndim == 1 and len(num_classes) == 1:
    labels = labels[:, None]
  if labels.ndim != 2 or labels.shape != (num_images, len(num_classes)):
    raise ValueError(f'labels must be int [N, A] = [{num_images}, {len(num_classes)}] (one column '
                     f'per attribute), got shape {labels.shape}.')
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f'labels must be integers, got dtype {labels.dtype}.')
  for a, n in enumerate(num_classes):
    col = labels[:, a]
    if col.size and (col.min() < -1 or col.max() >= n):
      raise ValueError(f'labels[:, {a}] has values in [{col.min()}, {col.max()}] but attribute {a} '
                       f'has {n} classes; valid values are 0..{n - 1}, or -1 for unknown.')
  return labels.astype(np.int32)


def _batches(n: int, batch_size: int):
  for start in range(0, n, batch_size):
    yield start, min(start + batch_size, n)


# ----------------------------------------------------------------------------- bundle


@functools.lru_cache(maxsize=None)
def _eval_fn(num_classes: Tuple[int, ...], width: int, feature_dim: int,
             resolution: Tuple[int, int]):
  """One jitted eval-mode forward per classifier configuration."""
  model = AttributeClassifier(num_classes, width, feature_dim)

  @jax.jit
  def fn(variables, x):
    features, logits = model.apply(variables, _resize(x, resolution), train=False)
    return features, tuple(jnp.argmax(l, axis=-1) for l in logits)
  return fn


@flax.struct.dataclass
class ClassifierBundle:
  """A trained attribute classifier: weights plus what is needed to rebuild it.

  A pytree (params and batch_stats are leaves; the rest is static metadata).
  """
  params: Any
  batch_stats: Any
  num_classes: Tuple[int, ...] = flax.struct.field(pytree_node=False)
  resolution: Tuple[int, int] = flax.struct.field(pytree_node=False)
  channels: int = flax.struct.field(pytree_node=False)
  width: int = flax.struct.field(pytree_node=False)
  feature_dim: int = flax.struct.field(pytree_node=False)

  @property
  def module(self) -> AttributeClassifier:
    return AttributeClassifier(self.num_classes, self.width, self.feature_dim)

  @property
  def variables(self):
    return {'params': self.params, 'batch_stats': self.batch_stats}

  def _run(self, images, batch_size: int):
    images = _check_images(images)
    if images.shape[-1] != self.channels:
      raise ValueError(f'The classifier was trained on {self.channels}-channel images, got '
                       f'{images.shape[-1]} channels.')
    if batch_size < 1:
      raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
    fn = _eval_fn(self.num_classes, self.width, self.feature_dim, self.resolution)
    n = images.shape[0]
    size = max(1, min(batch_size, n))
    feats, preds = [], []
    for start, end in _batches(n, size):
      x = to_model_input(images[start:end])
      if x.shape[0] < size:  # pad the last batch so the jitted shape never changes
        x = np.concatenate([x, np.zeros((size - x.shape[0],) + x.shape[1:], x.dtype)])
      f, p = jax.device_get(fn(self.variables, x))
      feats.append(f[:end - start])
      preds.append(np.stack(p, axis=-1)[:end - start])
    if not feats:
      return (np.zeros((0, self.feature_dim), np.float64),
              np.zeros((0, len(self.num_classes)), np.int64))
    return (np.concatenate(feats).astype(np.float64),
            np.concatenate(preds).astype(np.int64))

  def features(self, images, batch_size: int = 256) -> np.ndarray:
    """Feature vectors float64 [N, feature_dim] (eval mode, batched, jitted)."""
    return self._run(images, batch_size)[0]

  def predict(self, images, batch_size: int = 256) -> np.ndarray:
    """Predicted class ids int64 [N, A], one column per attribute."""
    return self._run(images, batch_size)[1]


def evaluate_accuracy(bundle: ClassifierBundle, images, labels,
                      batch_size: int = 256) -> List[float]:
  """Per-attribute accuracy of `bundle` on labelled images (labels -1 ignored; NaN if none)."""
  images = _check_images(images)
  labels = _check_labels(labels, images.shape[0], bundle.num_classes)
  preds = bundle.predict(images, batch_size)
  accs = []
  for a in range(len(bundle.num_classes)):
    known = labels[:, a] >= 0
    hits = preds[known, a] == labels[known, a]
    accs.append(float(np.mean(hits)) if known.any() else float('nan'))
  return accs


# ----------------------------------------------------------------------------- training


class _TrainState(train_state.TrainState):
  batch_stats: Any


def _loss(logits: Sequence[jnp.ndarray], labels: jnp.ndarray) -> jnp.ndarray:
  """Mean over attributes of the masked cross-entropy (labels -1 are ignored)."""
  total = 0.0
  for a, l in enumerate(logits):
    y = labels[:, a]
    known = (y >= 0).astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(l, jnp.maximum(y, 0))
    total += jnp.sum(ce * known) / jnp.maximum(jnp.sum(known), 1.0)
  return total / len(logits)


def _make_train_step(model: AttributeClassifier):
  @jax.jit
  def step(state: _TrainState, x, labels, flip):
    # Horizontal flips (mask drawn on the host: keeps threefry out of the step,
    # whose compile is slow on XLA CPU). They must not change any attribute.
    x = jnp.where(flip[:, None, None, None], x[:, :, ::-1], x)

    def loss_fn(params):
      (_, logits), updates = model.apply(
          {'params': params, 'batch_stats': state.batch_stats}, x, train=True,
          mutable=['batch_stats'])
      return _loss(logits, labels), updates

    (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads, batch_stats=updates['batch_stats'])
    return state, loss
  return step


def init_variables(model: AttributeClassifier, input_shape: Sequence[int], seed: int = 0):
  """Flax-default initial variables, drawn with numpy.

  Same distributions as `model.init` (lecun-normal truncated kernels, zero
  biases, unit BatchNorm scales and variances) but without compiling
  threefry: on XLA CPU the jitted `model.init` of this network takes tens of
  seconds to compile, this takes milliseconds.
  """
  shapes = jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0),
                          jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
  rng = np.random.default_rng(seed)

  def init_leaf(path, leaf):
    name = path[-1].key
    if name == 'kernel':  # lecun_normal: truncated normal, variance 1 / fan_in
      fan_in = int(np.prod(leaf.shape[:-1]))
      std = np.sqrt(1.0 / fan_in) / .87962566103423978  # std of N(0,1) truncated at +-2
      value = rng.standard_normal(leaf.shape)
      while (bad := np.abs(value) > 2).any():
        value[bad] = rng.standard_normal(int(bad.sum()))
      return (value * std).astype(leaf.dtype)
    if name in ('bias', 'mean'):
      return np.zeros(leaf.shape, leaf.dtype)
    if name in ('scale', 'var'):
      return np.ones(leaf.shape, leaf.dtype)
    raise ValueError(f'No numpy initializer for variable {jax.tree_util.keystr(path)}.')
  return jax.tree_util.tree_map_with_path(init_leaf, shapes)


def train_classifier(images, labels, num_classes: Sequence[int], *, steps: int,
                     batch_size: int = 128, seed: int = 0, learning_rate: float = 2e-3,
                     weight_decay: float = 1e-4, width: int = 32, feature_dim: int = 256,
                     augment: bool = True, log_every: int = 0) -> ClassifierBundle:
  """Trains an AttributeClassifier on labelled images.

  Args:
    images: uint8 [N, H, W, C] or floats in [-1, 1]; stays on the host, one
      batch at a time is converted and sent to the device.
    labels: int [N, A]; -1 marks an unknown attribute value.
    num_classes: number of values of each of the A attributes.
    steps: optimizer steps (adamw, warmup then cosine decay).
    batch_size: clipped to N; batches are drawn epoch by epoch without replacement.
    seed: seeds initialisation, shuffling and augmentation.
    learning_rate, weight_decay: adamw settings.
    width, feature_dim: model size (see AttributeClassifier).
    augment: random horizontal flips. Turn off if an attribute depends on
      left/right orientation.
    log_every: log the loss every this many steps (0: never).

  Returns:
    A ClassifierBundle in eval mode; the resolution is the training images' (H, W).
  """
  images = _check_images(images)
  n = images.shape[0]
  if n < 1:
    raise ValueError('images is empty; need at least one labelled image.')
  num_classes = tuple(int(c) for c in num_classes)
  if not num_classes or min(num_classes) < 2:
    raise ValueError(f'num_classes needs one entry >= 2 per attribute, got {num_classes}.')
  labels = _check_labels(labels, n, num_classes)
  if steps < 1:
    raise ValueError(f'steps must be >= 1, got {steps}.')
  batch_size = min(int(batch_size), n)
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}.')

  model = AttributeClassifier(num_classes, width, feature_dim)
  np_rng = np.random.default_rng(seed)
  variables = init_variables(model, (1,) + images.shape[1:], seed)
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, learning_rate, warmup_steps=max(1, min(100, steps // 10)), decay_steps=steps,
      end_value=learning_rate * 0.01)
  tx = optax.adamw(schedule, weight_decay=weight_decay)
  state = _TrainState(step=0, apply_fn=model.apply, params=variables['params'], tx=tx,
                      opt_state=jax.jit(tx.init)(variables['params']),
                      batch_stats=variables['batch_stats'])
  step_fn = _make_train_step(model)

  perm, pos = np_rng.permutation(n), 0
  for step in range(steps):
    if pos + batch_size > n:
      perm, pos = np_rng.permutation(n), 0
    idx = np.sort(perm[pos:pos + batch_size])
    pos += batch_size
    flip = (np_rng.random(batch_size) < 0.5) & augment
    state, loss = step_fn(state, to_model_input(images[idx]), labels[idx], flip)
    if log_every and (step + 1) % log_every == 0:
      loss = float(loss)
      if not np.isfinite(loss):
        raise FloatingPointError(f'Classifier loss became {loss} at step {step + 1}; lower '
                                 'learning_rate.')
      logging.info('classifier step %d/%d loss %.4f', step + 1, steps, loss)

  return ClassifierBundle(
      params=jax.device_get(state.params), batch_stats=jax.device_get(state.batch_stats),
      num_classes=num_classes, resolution=tuple(int(s) for s in images.shape[1:3]),
      channels=int(images.shape[3]), width=int(width), feature_dim=int(feature_dim))


# ----------------------------------------------------------------------------- files


def _metadata(bundle: ClassifierBundle) -> dict:
  return {'format': FILE_FORMAT, 'version': FILE_VERSION,
          'num_classes': list(bundle.num_classes), 'resolution': list(bundle.resolution),
          'channels': bundle.channels, 'width': bundle.width, 'feature_dim': bundle.feature_dim}


def metadata_path(path: str) -> str:
  """Where save_classifier puts the human-readable JSON next to the msgpack."""
  return os.path.splitext(os.fspath(path))[0] + '.json'


def save_classifier(bundle: ClassifierBundle, path: str):
  """Writes `path` (msgpack: weights + metadata) and `metadata_path(path)` (JSON), atomically."""
  path = os.fspath(path)
  if path.endswith('.json'):
    raise ValueError(f'{path!r}: use a .msgpack path; the .json name is taken by the metadata.')
  metadata = _metadata(bundle)
  state = {'metadata': json.dumps(metadata),
           'params': jax.device_get(bundle.params),
           'batch_stats': jax.device_get(bundle.batch_stats)}
  rundir.atomic_write(path, flax.serialization.msgpack_serialize(state))
  rundir.write_json(metadata_path(path), metadata)


def _expected_shapes(metadata: dict):
  model = AttributeClassifier(tuple(metadata['num_classes']), metadata['width'],
                              metadata['feature_dim'])
  dummy = jax.ShapeDtypeStruct((1, *metadata['resolution'], metadata['channels']), jnp.float32)
  return jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0), dummy)


def _compare_tree(expected, got, what: str, path: str):
  """Raises a ValueError listing missing / unexpected / wrongly shaped arrays."""
  exp = flax.traverse_util.flatten_dict(expected, sep='/')
  have = flax.traverse_util.flatten_dict(got, sep='/') if isinstance(got, dict) else {}
  missing = sorted(set(exp) - set(have))
  unexpected = sorted(set(have) - set(exp))
  wrong = sorted(f'{k} (file {np.shape(have[k])}, expected {tuple(exp[k].shape)})'
                 for k in set(exp) & set(have) if np.shape(have[k]) != tuple(exp[k].shape))
  if missing or unexpected or wrong:
    parts = []
    for label, items in (('missing', missing), ('unexpected', unexpected), ('wrong shape', wrong)):
      if items:
        shown = ', '.join(items[:10]) + (f', ... ({len(items)} in all)' if len(items) > 10 else '')
        parts.append(f'{label}: {shown}')
    raise ValueError(f'{path}: {what} do not match the classifier described in its metadata; '
                     + '; '.join(parts) + '. The file is from another version or is damaged.')


def load_classifier(path: str) -> ClassifierBundle:
  """Reads a classifier written by save_classifier (only the msgpack is needed).

  Raises FileNotFoundError if `path` is absent and ValueError if it is not a
  readable classifier file (corrupt, truncated, other format or version, or
  arrays that do not fit the architecture in its metadata).
  """
  import tensorflow as tf  # gfile: local paths and gs:// alike.
  path = os.fspath(path)
  if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
    raise FileNotFoundError(f'No classifier file at {path!r}. Train one with train_classifier() '
                            'and write it with save_classifier(bundle, path).')
  with tf.io.gfile.GFile(path, 'rb') as f:
    data = f.read()
  try:
    state = flax.serialization.msgpack_restore(data)
  except Exception as e:  # msgpack raises several types for bad bytes
    raise ValueError(f'{path!r} is not a readable classifier file (msgpack decode failed: {e}). '
                     'It may be truncated or corrupt; re-save or retrain it.') from e
  if not isinstance(state, dict) or not {'metadata', 'params', 'batch_stats'} <= set(state):
    raise ValueError(f'{path!r} is not a classifier file written by save_classifier: expected '
                     'keys metadata, params, batch_stats.')
  try:
    metadata = json.loads(state['metadata'])
    if metadata.get('format') != FILE_FORMAT:
      raise ValueError(f"format is {metadata.get('format')!r}, expected {FILE_FORMAT!r}")
    if metadata.get('version') != FILE_VERSION:
      raise ValueError(f"version is {metadata.get('version')!r}; this code reads version "
                       f'{FILE_VERSION}')
    expected = _expected_shapes(metadata)
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f'{path!r} has unusable classifier metadata: {e}.') from e
  _compare_tree(expected['params'], state['params'], 'weights', path)
  _compare_tree(expected['batch_stats'], state['batch_stats'], 'batch statistics', path)
  return ClassifierBundle(
      params=state['params'], batch_stats=state['batch_stats'],
      num_classes=tuple(int(n) for n in metadata['num_classes']),
      resolution=tuple(int(s) for s in metadata['resolution']),
      channels=int(metadata['channels']), width=int(metadata['width']),
      feature_dim=int(metadata['feature_dim']))
