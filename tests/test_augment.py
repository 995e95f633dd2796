"""Tests for gan/data/augment.py (tf.data augmentation ops)."""
import numpy as np
import pytest
import tensorflow as tf

from gan.data.augment import AUGMENTATIONS, build_augment, parse_spec

H, W = 16, 12
ALL_OPS = AUGMENTATIONS.names()
# Strong enough settings that one draw visibly changes a tiny image.
STRONG = {
    'random_resized_crop': 'random_resized_crop(min_area=0.3, max_area=0.6)',
    'zoom': 'zoom(min_scale=1.3, max_scale=2.0)',
    'translate': 'translate(max_fraction=0.3)',
    'rotate': 'rotate(max_degrees=30)',
    'brightness': 'brightness(max_delta=0.3)',
    'contrast': 'contrast(lower=0.5, upper=1.5)',
    'saturation': 'saturation(lower=0.3, upper=1.7)',
    'hue': 'hue(max_delta=0.3)',
}


def _image(seed=0):
  # Covers the whole [-1, 1] range, so range violations would show.
  x = np.random.RandomState(seed).uniform(-1, 1, (H, W, 3)).astype(np.float32)
  x[0, 0] = -1.0
  x[-1, -1] = 1.0
  return tf.constant(x)


def _seed(a, b=0):
  return tf.constant([a, b], tf.int64)


def test_expected_ops_registered():
  for name in ['flip', 'random_resized_crop', 'zoom', 'translate', 'brightness', 'contrast',
               'saturation', 'hue', 'rotate']:
    assert name in AUGMENTATIONS


@pytest.mark.parametrize('name', ALL_OPS)
def test_op_shape_range_determinism_and_variation(name):
  fn = build_augment([STRONG.get(name, name)])
  image = _image()
  outs = [fn(image, _seed(s)).numpy() for s in range(8)]
  for out in outs:
    assert out.shape == (H, W, 3)
    assert out.dtype == np.float32
    assert out.min() >= -1.0 and out.max() <= 1.0
  np.testing.assert_array_equal(fn(image, _seed(3)).numpy(), outs[3])
  # int32 and int64 seeds with equal values agree.
  np.testing.assert_array_equal(fn(image, tf.constant([3, 0], tf.int32)).numpy(), outs[3])
  assert any(not np.array_equal(outs[0], o) for o in outs[1:]), f'{name} ignores the seed'
  assert any(not np.array_equal(image.numpy(), o) for o in outs), f'{name} never changes'


def test_flip_actually_flips():
  fn = build_augment('flip')
  image = _image().numpy()
  flipped = 0
  for s in range(16):
    out = fn(tf.constant(image), _seed(s)).numpy()
    if np.array_equal(out, image[:, ::-1]):
      flipped += 1
    else:
      np.testing.assert_array_equal(out, image)
  assert 0 < flipped < 16


def test_translate_is_a_whole_pixel_shift_with_constant_fill():
  fn = build_augment('translate(max_fraction=0.25, fill=constant, fill_value=0.5)')
  image = _image().numpy()
  seen = set()
  for s in range(10):
    out = fn(tf.constant(image), _seed(s)).numpy()
    matches = []
    for dy in range(-4, 5):
      for dx in range(-3, 4):
        want = np.full_like(image, 0.5)
        ys, xs = slice(max(dy, 0), H + min(dy, 0)), slice(max(dx, 0), W + min(dx, 0))
        yi, xi = slice(max(-dy, 0), H + min(-dy, 0)), slice(max(-dx, 0), W + min(-dx, 0))
        want[ys, xs] = image[yi, xi]
        if np.allclose(out, want, atol=1e-6):
          matches.append((dy, dx))
    assert matches, 'translate output is not a shift of the input'
    seen.add(matches[0])
  assert len(seen) > 1


@pytest.mark.parametrize('fill', ['reflect', 'edge', 'wrap'])
def test_translate_fills_from_the_image(fill):
  image = _image().numpy()
  out = build_augment(f'translate(max_fraction=0.3, fill={fill})')(
      tf.constant(image), _seed(1)).numpy()
  # No constant fill: every output pixel is some input pixel.
  pixels = {tuple(p) for p in image.reshape(-1, 3).round(5)}
  assert all(tuple(p) in pixels for p in out.reshape(-1, 3).round(5))


def test_zero_strength_ops_are_identity():
  image = _image()
  fn = build_augment('translate(max_fraction=0), rotate(max_degrees=0), '
                     'zoom(max_scale=1.0), brightness(max_delta=0), '
                     'contrast(lower=1, upper=1), saturation(lower=1, upper=1)')
  np.testing.assert_allclose(fn(image, _seed(0)).numpy(), image.numpy(), atol=1e-5)


def test_photometric_ops_keep_grey_grey_and_change_colours():
  grey = tf.fill([H, W, 3], 0.2)
  for name in ['saturation', 'hue']:
    out = build_augment(STRONG[name])(grey, _seed(0)).numpy()
    np.testing.assert_allclose(out, grey.numpy(), atol=1e-5)
  bright = build_augment('brightness(max_delta=0.2)')
  deltas = {round(float(bright(grey, _seed(s)).numpy().mean() - 0.2), 5) for s in range(5)}
  assert len(deltas) == 5 and all(abs(d) <= 0.4 + 1e-5 for d in deltas)  # [0,1] units x2


def test_spec_parsing_forms_and_arguments():
  expected = [('flip', {}), ('zoom', {'max_scale': 1.2}),
              ('random_resized_crop', {'min_area': 0.5, 'min_ratio': 0.5}),
              ('translate', {'fill': 'edge', 'fill_value': -1.0})]
  string = ('flip, zoom(max_scale=1.2) | random_resized_crop(min_area=0.5, min_ratio=0.5),'
            "translate(fill='edge', fill_value=-1.0)")
  as_list = ['flip', 'zoom(max_scale=1.2)', 'random_resized_crop(min_area=0.5, min_ratio=0.5)',
             'translate(fill=edge, fill_value=-1.0)']
  assert parse_spec(string) == expected
  assert parse_spec(as_list) == expected
  assert parse_spec('') == parse_spec([]) == parse_spec(None) == []
  # Arguments really reach the op: a huge max_scale zooms visibly more than a tiny one.
  image = _image()
  weak = build_augment('zoom(max_scale=1.01)')(image, _seed(0)).numpy()
  strong = build_augment('zoom(min_scale=3, max_scale=3.0)')(image, _seed(0)).numpy()
  assert np.abs(weak - image.numpy()).mean() < np.abs(strong - image.numpy()).mean()


@pytest.mark.parametrize('spec', ['', [], None, ' , | '])
def test_empty_spec_is_identity(spec):
  image = _image()
  out = build_augment(spec, ['colour'])(image, _seed(0))
  np.testing.assert_array_equal(out.numpy(), image.numpy())


def test_unknown_op_lists_valid_ops():
  with pytest.raises(ValueError, match=r"'blur'.*flip.*zoom"):
    build_augment(['flip', 'blur'])


@pytest.mark.parametrize('spec, pattern', [
    ('zoom(scale=1.2)', r"'zoom' has no argument.*scale.*Valid arguments: max_scale, min_scale"),
    ('flip(p=0.5)', r"'flip' has no argument.*p.*Valid arguments: \(none\)"),
    ('zoom(max_scale=0.5)', r"'zoom'.*max_scale=0.5 is outside"),
    ('contrast(lower=1.2, upper=0.8)', r"'contrast'.*lower=1.2 is greater than upper"),
    ('brightness(max_delta=fast)', r"'brightness'.*max_delta must be a number"),
    ('translate(fill=mirror)', r"'translate'.*fill='mirror'.*constant, edge, reflect, wrap"),
    ('zoom(1.2)', r'pass arguments by name'),
    ('zoom(max_scale=1.2', r'Unbalanced parentheses'),
    ('zoom max_scale', r'Cannot parse augmentation'),
    ('zoom(max_scale=abs(2))', r'must be literals'),
])
def test_bad_arguments_are_clear_errors(spec, pattern):
  with pytest.raises(ValueError, match=pattern):
    build_augment(spec)


@pytest.mark.parametrize('attribute', ['colour', 'color', 'Colour', 'COLOR', 'main_color'])
@pytest.mark.parametrize('op', ['hue', 'saturation', 'brightness', 'contrast'])
def test_colour_changing_op_refused_when_colour_conditioned(op, attribute):
  with pytest.raises(ValueError) as info:
    build_augment(['flip', op], conditioned_attributes=['category', attribute])
  message = str(info.value)
  assert repr(op) in message and repr(attribute) in message
  assert 'Remove' in message and 'stop conditioning' in message


def test_colour_changing_op_allowed_otherwise():
  spec = ['flip', 'hue', 'saturation', 'brightness', 'contrast']
  build_augment(spec, conditioned_attributes=['category', 'pattern'])
  build_augment(spec, conditioned_attributes=[])
  build_augment(spec, conditioned_attributes='category')  # one name as a plain string
  # Geometric ops are label preserving: fine with colour conditioning.
  build_augment(['flip', 'zoom', 'translate', 'rotate', 'random_resized_crop'],
                conditioned_attributes=['colour', 'category'])


def test_bad_image_or_seed():
  fn = build_augment('flip')
  with pytest.raises(ValueError, match='float32'):
    fn(tf.zeros([H, W, 3], tf.uint8), _seed(0))
  with pytest.raises(ValueError, match='one image'):
    fn(tf.zeros([2, H, W, 3]), _seed(0))
  with pytest.raises(ValueError, match='integer seed'):
    fn(tf.zeros([H, W, 3]), tf.constant([0.0, 1.0]))


def test_in_tf_data_pipeline_with_per_element_seeds():
  fn = build_augment(['flip', 'zoom(max_scale=1.3)', 'translate(max_fraction=0.2)',
                      'brightness(max_delta=0.2)', 'contrast(lower=0.8, upper=1.2)'])
  image = _image()
  base_seed = tf.constant(1234, tf.int64)

  def make():
    ds = tf.data.Dataset.from_tensors(image).repeat(6).enumerate()
    ds = ds.map(lambda i, x: fn(x, tf.stack([base_seed, i])),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(3, drop_remainder=True)

  ds = make()
  assert ds.element_spec.shape.as_list() == [3, H, W, 3]
  first = np.concatenate([b.numpy() for b in ds])
  second = np.concatenate([b.numpy() for b in make()])
  np.testing.assert_array_equal(first, second)  # reproducible from the base seed
  assert first.shape == (6, H, W, 3) and first.min() >= -1 and first.max() <= 1
  # Every element got its own draw.
  assert len({first[i].tobytes() for i in range(6)}) == 6
  # Same per-element seed outside the pipeline gives the same image.
  np.testing.assert_allclose(fn(image, tf.constant([1234, 4], tf.int64)).numpy(), first[4],
                             atol=1e-6)

