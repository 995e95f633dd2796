"""Tests for the synthetic product renderer and the `synthetic_products` TFDS builder."""
import hashlib
import itertools

import numpy as np
import pytest
import tensorflow_datasets as tfds

import gan.data  # noqa: F401  (registers synthetic_products)
from gan.data import render
from gan.data import synthetic_products

N_CAT, N_COL, N_PAT = len(render.CATEGORIES), len(render.COLOURS), len(render.PATTERNS)
PALETTE = np.array(list(render.COLOURS.values()), np.float64)


def _render(cat, col, pat, seed, size=64):
  return render.render_product_with_mask(cat, col, pat, np.random.default_rng(seed), size)


# ----------------------------------------------------------------------------- renderer

def test_constants():
  assert len(render.CATEGORIES) >= 8 and len(set(render.CATEGORIES)) == N_CAT
  for name in ('t-shirt', 'trousers', 'dress', 'handbag', 'sneaker', 'mug', 'bottle', 'lamp'):
    assert name in render.CATEGORIES
  assert len(render.COLOURS) >= 10
  assert render.PATTERNS == ('solid', 'striped', 'dotted', 'checked')
  # Palette entries stay apart and away from the light studio background.
  dists = np.linalg.norm(PALETTE[:, None] - PALETTE[None], axis=-1)
  assert dists[~np.eye(N_COL, dtype=bool)].min() >= 60
  assert (PALETTE.mean(axis=1) < 190).all()


@pytest.mark.parametrize('size', [64, 32, 96])
def test_shape_and_dtype(size):
  img = render.render_product(3, 2, 1, np.random.default_rng(0), size)
  assert img.shape == (size, size, 3) and img.dtype == np.uint8


def test_deterministic_given_seed():
  a = render.render_product(4, 5, 2, np.random.default_rng([7, 1, 3]))
  b = render.render_product(4, 5, 2, np.random.default_rng([7, 1, 3]))
  c = render.render_product(4, 5, 2, np.random.default_rng([7, 1, 4]))
  np.testing.assert_array_equal(a, b)
  assert np.abs(a.astype(int) - c).mean() > 1.0


def test_every_combination_renders():
  for cat, col, pat in itertools.product(range(N_CAT), range(N_COL), range(N_PAT)):
    img, cov = _render(cat, col, pat, [cat, col, pat])
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert cov.min() >= 0 and cov.max() <= 1
    inside = (cov > 0.99).mean()
    # A visible product that stays clear of the borders (the shot is framed).
    assert 0.04 < inside < 0.6, (cat, col, pat, inside)
    assert cov[0].max() < 0.01 and cov[-1].max() < 0.01
    assert cov[:, 0].max() < 0.01 and cov[:, -1].max() < 0.01


def test_solid_product_colour_is_nearest_palette_entry():
  for cat, col in itertools.product(range(N_CAT), range(N_COL)):
    for seed in range(3):
      img, cov = _render(cat, col, 0, [seed, cat, col])
      mean = img[cov > 0.99].astype(np.float64).mean(axis=0)
      nearest = np.argmin(np.linalg.norm(PALETTE - mean, axis=1))
      assert nearest == col, (render.CATEGORIES[cat], list(render.COLOURS)[col], mean)


def test_patterns_are_drawn_on_the_product():
  for cat, col in itertools.product(range(N_CAT), range(N_COL)):
    base = PALETTE[col]
    second = render.secondary_tone(base)
    fractions = []
    for pat in range(N_PAT):
      img, cov = _render(cat, col, pat, [cat, col])
      px = img[cov > 0.99].astype(np.float64)
      fractions.append(np.mean(np.linalg.norm(px - second, axis=1) <
                               np.linalg.norm(px - base, axis=1)))
    for pat in range(1, N_PAT):
      assert fractions[pat] > fractions[0] + 0.05, (cat, col, render.PATTERNS[pat], fractions)


def test_background_is_light_and_pattern_stays_on_product():
  for cat in range(N_CAT):
    img, cov = _render(cat, 10, 3, [cat])     # black checked: any spill would show
    bg = img[cov < 0.01].astype(np.float64)
    # Background and shadow only: light grey, no product colours.
    assert bg.mean() > 150 and np.abs(bg - bg.mean(axis=1, keepdims=True)).max() < 25


def test_categories_are_recognisable_by_silhouette():
  """A nearest-centroid classifier on 16x16 silhouettes separates the categories."""
  def silhouette(cat, seed):
    _, cov = _render(cat, seed % N_COL, seed % N_PAT, [seed, cat])
    return cov.reshape(16, 4, 16, 4).mean(axis=(1, 3)).ravel()
  centroids = np.stack([np.mean([silhouette(c, s) for s in range(12)], axis=0)
                        for c in range(N_CAT)])
  correct = 0
  for cat in range(N_CAT):
    for seed in range(100, 110):
      d = np.linalg.norm(centroids - silhouette(cat, seed), axis=1)
      correct += int(np.argmin(d) == cat)
  assert correct / (N_CAT * 10) >= 0.9


@pytest.mark.parametrize('args', [(N_CAT, 0, 0), (0, N_COL, 0), (0, 0, N_PAT), (-1, 0, 0),
                                  (0.5, 0, 0)])
def test_bad_attribute_raises(args):
  with pytest.raises(ValueError, match='must be an int'):
    render.render_product(*args, np.random.default_rng(0))


# ----------------------------------------------------------------------------- builder

def _build(data_dir):
  builder = tfds.builder('synthetic_products/tiny', data_dir=str(data_dir))
  builder.download_and_prepare()
  return builder


def _digest(ex):
  return (hashlib.sha1(ex['image'].tobytes()).hexdigest(), int(ex['category']),
          int(ex['colour']), int(ex['pattern']))


@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp('tfds')
  _build(data_dir)
  return data_dir


def test_tiny_build_counts_and_features(tiny_dir):
  train, info = tfds.load('synthetic_products/tiny', split='train', data_dir=str(tiny_dir),
                          with_info=True, download=False)
  assert info.splits['train'].num_examples == 512
  assert info.splits['test'].num_examples == 128
  assert info.features['category'].names == list(render.CATEGORIES)
  assert info.features['colour'].names == list(render.COLOURS)
  assert info.features['pattern'].names == list(render.PATTERNS)
  assert info.features['image'].shape == (64, 64, 3)
  assert info.supervised_keys is None
  assert info.metadata['colour_rgb']['navy'] == [0, 0, 128]
  examples = list(tfds.as_numpy(train))
  assert len(examples) == 512
  assert examples[0]['image'].dtype == np.uint8 and examples[0]['image'].shape == (64, 64, 3)
  # Uniform attributes: every value shows up in 512 draws.
  for key, n in (('category', N_CAT), ('colour', N_COL), ('pattern', N_PAT)):
    assert set(int(ex[key]) for ex in examples) == set(range(n))
  test = tfds.load('synthetic_products/tiny', split='test', data_dir=str(tiny_dir),
                   download=False)
  assert sum(1 for _ in test) == 128


def test_examples_come_from_their_own_seeds(tiny_dir):
  test = tfds.as_numpy(tfds.load('synthetic_products/tiny', split='test',
                                 data_dir=str(tiny_dir), download=False))
  loaded = sorted(_digest(ex) for ex in test)
  expected = sorted(_digest(synthetic_products.make_example(0, 1, i)) for i in range(128))
  assert loaded == expected


def test_two_builds_are_identical(tiny_dir, tmp_path):
  _build(tmp_path)
  for split in ('train', 'test'):
    a = [_digest(ex) for ex in tfds.as_numpy(tfds.load(
        'synthetic_products/tiny', split=split, data_dir=str(tiny_dir), download=False))]
    b = [_digest(ex) for ex in tfds.as_numpy(tfds.load(
        'synthetic_products/tiny', split=split, data_dir=str(tmp_path), download=False))]
    assert a == b


def test_config_validation():
  with pytest.raises(ValueError, match='num_train must be a positive int'):
    synthetic_products.SyntheticProductsConfig(name='bad', num_train=0)
  with pytest.raises(ValueError, match='seed'):
    synthetic_products.SyntheticProductsConfig(name='bad', seed=-1)
