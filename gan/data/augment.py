"""Label-preserving tf.data augmentations as small registered ops (big_vision style).

A config names the ops it wants, in order::

  config.augment = ['flip', 'zoom(max_scale=1.15)', 'translate(max_fraction=0.1)']
  # or one string: 'flip | zoom(max_scale=1.15) | translate(max_fraction=0.1)'  (gan/spec.py)
  augment = build_augment(config.augment, conditioned_attributes=['category', 'colour'])
  ds = ds.map(lambda image, seed: augment(image, seed))

Every op works on one float32 image [H, W, 3] in [-1, 1] and is a pure function of
(image, seed), seed being a shape-[2] int32/int64 tensor (`tf.random.stateless_*`
convention). The same (image, seed) always gives the same output, so a pipeline that
derives per-element seeds from one base seed is reproducible; the caller provides them,
e.g. `ds.enumerate().map(lambda i, x: augment(x, tf.stack([base_seed, i])))`.

Each op declares which attribute kinds it would change. A GAN conditioned on an attribute
learns whatever the augmentation does to it as part of that attribute, so `build_augment`
refuses an op that changes a conditioned attribute. The declarations:

  * geometric ops (flip, random_resized_crop, zoom, translate, rotate) change nothing:
    a mirrored, reframed or slightly turned bag is still the same bag.
  * every photometric op (brightness, contrast, saturation, hue) changes `colour`.
    Brightness and contrast are included on purpose: "navy" vs "blue" or "charcoal" vs
    "grey" is a lightness difference, so shifting lightness moves the colour label.

Photometric arguments mean what they mean in `tf.image`: the op runs on the [0, 1] view
(x + 1) / 2 of the image, e.g. brightness(max_delta=0.1) shifts by up to 10% of the range.
Every op clips its output to [-1, 1] and keeps the static shape.
"""
import dataclasses
import inspect
import math
import re
from typing import Any, Callable, Dict, List, Sequence, Tuple

import tensorflow as tf

from gan import spec as spec_lib
from gan.registry import Registry

OpFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
Spec = spec_lib.Spec

COLOUR = 'colour'
_FILL_MODES = {'reflect': 'REFLECT', 'edge': 'NEAREST', 'constant': 'CONSTANT', 'wrap': 'WRAP'}


@dataclasses.dataclass(frozen=True)
class AugmentOp:
  """A registered op: `factory(**kwargs)` returns `fn(image, seed) -> image`."""
  name: str
  factory: Callable[..., OpFn]
  changes: Tuple[str, ...]

  def arguments(self) -> List[str]:
    return list(inspect.signature(self.factory).parameters)


AUGMENTATIONS = Registry('augmentation')


def _register(name: str, changes: Sequence[str] = ()):
  def decorator(factory):
    AUGMENTATIONS.register(name)(AugmentOp(name, factory, tuple(changes)))
    return factory
  return decorator


# ----------------------------------------------------------------------------- helpers

def _number(op: str, key: str, value: Any, low: float = -math.inf, high: float = math.inf,
            integer: bool = False) -> float:
  """Checks that an op argument is a number in [low, high]."""
  if isinstance(value, bool) or not isinstance(value, (int, float)) or (
      integer and not isinstance(value, int)):
    kind = 'an integer' if integer else 'a number'
    raise ValueError(f'augmentation {op!r}: {key} must be {kind}, got {value!r}.')
  if not low <= value <= high:
    raise ValueError(f'augmentation {op!r}: {key}={value!r} is outside [{low}, {high}].')
  return value


def _ordered(op: str, lower_key: str, lower: float, upper_key: str, upper: float):
  if lower > upper:
    raise ValueError(f'augmentation {op!r}: {lower_key}={lower} is greater than '
                     f'{upper_key}={upper}; swap them.')


def _fill(op: str, fill: Any) -> str:
  if fill not in _FILL_MODES:
    raise ValueError(f'augmentation {op!r}: fill={fill!r} is not one of '
                     f'{", ".join(sorted(_FILL_MODES))}.')
  return _FILL_MODES[fill]


def _uniform(seed: tf.Tensor, n: int, low=0.0, high=1.0) -> tf.Tensor:
  return tf.random.stateless_uniform([n], seed, minval=low, maxval=high, dtype=tf.float32)


def _size(image: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  shape = tf.shape(image)
  return shape[0], shape[1]


def _on_unit_range(fn: Callable[[tf.Tensor], tf.Tensor], image: tf.Tensor) -> tf.Tensor:
  """Runs a tf.image colour op on the [0, 1] view of a [-1, 1] image."""
  return fn((image + 1.0) * 0.5) * 2.0 - 1.0


def _transform(image: tf.Tensor, transform: tf.Tensor, fill_mode: str, fill_value: float,
               interpolation: str) -> tf.Tensor:
  """Applies a projective transform (output pixel -> input pixel), filling the outside."""
  height, width = _size(image)
  out = tf.raw_ops.ImageProjectiveTransformV3(
      images=image[None], transforms=tf.cast(transform, tf.float32)[None],
      output_shape=tf.stack([height, width]), fill_value=tf.constant(fill_value, tf.float32),
      interpolation=interpolation, fill_mode=fill_mode)
  return out[0]


def _crop_resize(image: tf.Tensor, box: tf.Tensor) -> tf.Tensor:
  """Crops a normalized [y0, x0, y1, x1] box and resizes it back to the image size."""
  height, width = _size(image)
  out = tf.image.crop_and_resize(image[None], box[None], [0], tf.stack([height, width]))
  return out[0]


# ----------------------------------------------------------------------------- geometric

@_register('flip')
def flip() -> OpFn:
  """Mirrors left-right with probability 1/2."""
  return lambda image, seed: tf.image.stateless_random_flip_left_right(image, seed)


@_register('random_resized_crop')
def random_resized_crop(min_area: float = 0.8, max_area: float = 1.0,
                        min_ratio: float = 3 / 4, max_ratio: float = 4 / 3) -> OpFn:
  """Crops a random box (area fraction, aspect ratio relative to the image) and resizes back."""
  op = 'random_resized_crop'
  _number(op, 'min_area', min_area, 1e-3, 1.0)
  _number(op, 'max_area', max_area, 1e-3, 1.0)
  _ordered(op, 'min_area', min_area, 'max_area', max_area)
  _number(op, 'min_ratio', min_ratio, 1e-2, 1e2)
  _number(op, 'max_ratio', max_ratio, 1e-2, 1e2)
  _ordered(op, 'min_ratio', min_ratio, 'max_ratio', max_ratio)

  def fn(image, seed):
    u = _uniform(seed, 4)
    area = min_area + (max_area - min_area) * u[0]
    log_ratio = math.log(min_ratio) + (math.log(max_ratio) - math.log(min_ratio)) * u[1]
    ratio = tf.exp(log_ratio)
    # Box sides as fractions of the image; a box that would not fit is clipped to it.
    h = tf.minimum(tf.sqrt(area / ratio), 1.0)
    w = tf.minimum(tf.sqrt(area * ratio), 1.0)
    y0 = (1.0 - h) * u[2]
    x0 = (1.0 - w) * u[3]
    return _crop_resize(image, tf.stack([y0, x0, y0 + h, x0 + w]))
  return fn


@_register('zoom')
def zoom(max_scale: float = 1.15, min_scale: float = 1.0) -> OpFn:
  """Zooms in by a factor in [min_scale, max_scale] around a random point (crop + resize)."""
  op = 'zoom'
  _number(op, 'min_scale', min_scale, 1.0, 10.0)
  _number(op, 'max_scale', max_scale, 1.0, 10.0)
  _ordered(op, 'min_scale', min_scale, 'max_scale', max_scale)

  def fn(image, seed):
    u = _uniform(seed, 3)
    side = 1.0 / (min_scale + (max_scale - min_scale) * u[0])
    y0 = (1.0 - side) * u[1]
    x0 = (1.0 - side) * u[2]
    return _crop_resize(image, tf.stack([y0, x0, y0 + side, x0 + side]))
  return fn


@_register('translate')
def translate(max_fraction: float = 0.1, fill: str = 'reflect',
              fill_value: float = 1.0) -> OpFn:
  """Shifts by whole pixels, up to max_fraction of the height / width in each direction.

  fill: how uncovered pixels are filled: 'reflect', 'edge' (repeat the border pixel),
  'wrap', or 'constant' with fill_value (default 1.0, white: the usual catalogue background).
  """
  op = 'translate'
  _number(op, 'max_fraction', max_fraction, 0.0, 0.5)
  mode = _fill(op, fill)
  _number(op, 'fill_value', fill_value, -1.0, 1.0)

  def fn(image, seed):
    height, width = _size(image)
    limit = tf.cast(tf.stack([height, width]), tf.float32) * max_fraction
    # Whole-pixel shifts in [-limit, limit], so nearest sampling copies pixels exactly.
    shift = tf.round((_uniform(seed, 2) * 2.0 - 1.0) * tf.floor(limit))
    dy, dx = shift[0], shift[1]
    transform = tf.stack([1.0, 0.0, -dx, 0.0, 1.0, -dy, 0.0, 0.0])
    return _transform(image, transform, mode, fill_value, 'NEAREST')
  return fn


@_register('rotate')
def rotate(max_degrees: float = 10.0, fill: str = 'reflect', fill_value: float = 1.0) -> OpFn:
  """Rotates about the centre by an angle in [-max_degrees, max_degrees] (bilinear).

  fill: 'reflect', 'edge', 'wrap' or 'constant' with fill_value (see translate).
  """
  op = 'rotate'
  _number(op, 'max_degrees', max_degrees, 0.0, 180.0)
  mode = _fill(op, fill)
  _number(op, 'fill_value', fill_value, -1.0, 1.0)

  def fn(image, seed):
    height, width = _size(image)
    h = tf.cast(height, tf.float32) - 1.0
    w = tf.cast(width, tf.float32) - 1.0
    angle = (_uniform(seed, 1)[0] * 2.0 - 1.0) * (max_degrees * math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output pixel -> input pixel, rotating about the image centre.
    x_offset = (w - (cos * w - sin * h)) / 2.0
    y_offset = (h - (sin * w + cos * h)) / 2.0
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])
    return _transform(image, transform, mode, fill_value, 'BILINEAR')
  return fn


# ----------------------------------------------------------------------------- photometric

@_register('brightness', changes=[COLOUR])
def brightness(max_delta: float = 0.1) -> OpFn:
  """Adds a delta in [-max_delta, max_delta] (in [0, 1] image units)."""
  _number('brightness', 'max_delta', max_delta, 0.0, 1.0)
  return lambda image, seed: _on_unit_range(
      lambda x: tf.image.stateless_random_brightness(x, max_delta, seed), image)


@_register('contrast', changes=[COLOUR])
def contrast(lower: float = 0.9, upper: float = 1.1) -> OpFn:
  """Scales each channel about its mean by a factor in [lower, upper]."""
  op = 'contrast'
  _number(op, 'lower', lower, 0.0, 10.0)
  _number(op, 'upper', upper, 0.0, 10.0)
  _ordered(op, 'lower', lower, 'upper', upper)
  return lambda image, seed: _on_unit_range(
      lambda x: _stateless_factor(tf.image.adjust_contrast, x, lower, upper, seed), image)


@_register('saturation', changes=[COLOUR])
def saturation(lower: float = 0.9, upper: float = 1.1) -> OpFn:
  """Scales HSV saturation by a factor in [lower, upper]."""
  op = 'saturation'
  _number(op, 'lower', lower, 0.0, 10.0)
  _number(op, 'upper', upper, 0.0, 10.0)
  _ordered(op, 'lower', lower, 'upper', upper)
  return lambda image, seed: _on_unit_range(
      lambda x: _stateless_factor(tf.image.adjust_saturation, x, lower, upper, seed), image)


@_register('hue', changes=[COLOUR])
def hue(max_delta: float = 0.02) -> OpFn:
  """Rotates the hue by a delta in [-max_delta, max_delta] turns (at most 0.5)."""
  _number('hue', 'max_delta', max_delta, 0.0, 0.5)
  return lambda image, seed: _on_unit_range(
      lambda x: tf.image.stateless_random_hue(x, max_delta, seed), image)


def _stateless_factor(adjust, image, lower, upper, seed):
  # tf.image.stateless_random_{contrast,saturation} reject lower == upper; a fixed factor
  # is a fine (if pointless) config, so draw the factor here instead.
  factor = _uniform(seed, 1, lower, upper)[0] if upper > lower else tf.constant(lower, tf.float32)
  return adjust(image, factor)


# ----------------------------------------------------------------------------- spec parsing

SPEC = spec_lib.OpSpec(AUGMENTATIONS, AugmentOp.arguments, example='zoom(max_scale=1.15)')


def parse_spec(spec: Spec) -> List[Tuple[str, Dict[str, Any]]]:
  """Parses a spec (list of strings or one comma/pipe-separated string) to (name, kwargs), each
  name registered and each argument one its op takes (gan/spec.py)."""
  return SPEC.parse(spec)


# ----------------------------------------------------------------------------- building

def _attribute_kinds(attribute: str) -> set:
  """Kinds an attribute name refers to: its whole name and its words, colour == color."""
  name = attribute.strip().lower()
  words = set(re.split(r'[^a-z0-9]+', name)) | {name}
  return {COLOUR if w == 'color' else w for w in words if w}


def _check_conditioning(op: AugmentOp, conditioned_attributes: Sequence[str]):
  for attribute in conditioned_attributes:
    clash = sorted(_attribute_kinds(attribute) & set(op.changes))
    if clash:
      raise ValueError(
          f'Augmentation {op.name!r} changes {clash[0]!r}, but the model is conditioned on '
          f'attribute {attribute!r}: the generator would learn the augmentation as part of '
          f'that attribute. Remove {op.name!r} from the augmentation spec, or stop '
          f'conditioning on {attribute!r}.')


def _build_op(name: str, kwargs: Dict[str, Any], conditioned_attributes: Sequence[str]) -> OpFn:
  op = AUGMENTATIONS.get(name)
  _check_conditioning(op, conditioned_attributes)
  return op.factory(**kwargs)


def build_augment(spec: Spec, conditioned_attributes: Sequence[str] = ()
                  ) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
  """Builds `augment(image, seed) -> image` from a spec; identity for an empty spec.

  Args:
    spec: list of op strings or one comma/pipe-separated string, each `name` or
      `name(key=value, ...)` (gan/spec.py); see `AUGMENTATIONS.names()` for the ops.
    conditioned_attributes: attribute names the model is conditioned on. An op that would
      change one of them is refused (case-insensitive; `color` and `colour` are the same;
      an attribute also matches through its words, e.g. `main_color`).

  Returns:
    A function of a float32 image [H, W, C] in [-1, 1] and a shape-[2] integer seed,
    returning the augmented image with the same shape, clipped to [-1, 1].
  """
  if isinstance(conditioned_attributes, str):
    conditioned_attributes = [conditioned_attributes]
  conditioned_attributes = list(conditioned_attributes or ())
  ops = [_build_op(name, kwargs, conditioned_attributes) for name, kwargs in parse_spec(spec)]

  # No tensor-dependent Python control flow here, so autograph has nothing to convert.
  @tf.autograph.experimental.do_not_convert
  def augment(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.float32:
      raise ValueError(f'augment expects a float32 image in [-1, 1], got {image.dtype.name}; '
                       f'convert it first, e.g. tf.cast(x, tf.float32) / 127.5 - 1.')
    if image.shape.rank != 3:
      raise ValueError(f'augment expects one image [H, W, C], got shape {image.shape}; '
                       f'apply it per example (inside dataset.map, before batching).')
    if not ops:
      return image
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
      raise ValueError(f'augment expects a shape-[2] integer seed, got {seed.dtype.name}.')
    # One dtype for the split, so an int32 and an int64 seed with equal values agree.
    seed = tf.cast(seed, tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, num=len(ops))
    static_shape = image.shape
    for i, op in enumerate(ops):
      image = tf.clip_by_value(op(image, seeds[i]), -1.0, 1.0)
      image.set_shape(static_shape)
    return image

  return augment
