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
N_MAT = len(render.MATERIALS)
PALETTE = np.array(list(render.COLOURS.values()), np.float64)


def _render(cat, col, pat, seed, size=64, material=None):
  return render.render_product_with_mask(cat, col, pat, np.random.default_rng(seed), size,
                                         material)


# ----------------------------------------------------------------------------- renderer

def test_constants():
  assert len(render.CATEGORIES) >= 8 and len(set(render.CATEGORIES)) == N_CAT
  for name in ('t-shirt', 'trousers', 'dress', 'handbag', 'sneaker', 'mug', 'bottle', 'lamp'):
    assert name in render.CATEGORIES
  assert len(render.COLOURS) >= 10
  assert render.PATTERNS == ('solid', 'striped', 'dotted', 'checked')
  assert render.MATERIALS == ('fabric', 'plastic', 'metal', 'leather')
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


@pytest.mark.parametrize('material', [N_MAT, -1, 1.0, 'metal'])
def test_bad_material_raises(material):
  with pytest.raises(ValueError, match=r'material must be an int in \[0, 4\)'):
    render.render_product(0, 0, 0, np.random.default_rng(0), 64, material)


# ----------------------------------------------------------------------------- materials

def _luminance(img):
  return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _erode(mask, steps):
  for _ in range(steps):
    m = mask.copy()
    m[1:] &= mask[:-1]
    m[:-1] &= mask[1:]
    m[:, 1:] &= mask[:, :-1]
    m[:, :-1] &= mask[:, 1:]
    mask = m
  return mask


def _surface_stats(img, cov):
  """Highlight, texture and contrast statistics of the product's pixels."""
  lum = _luminance(img)
  inside = cov > 0.99
  core = _erode(inside, 2)  # The outline is not texture.
  high_pass = lum - (np.roll(lum, 1, 0) + np.roll(lum, -1, 0) + np.roll(lum, 1, 1)
                     + np.roll(lum, -1, 1)) / 4
  return {
      'near_white': float((img.min(axis=-1) > 235)[inside].mean()),  # Specular pixels.
      'highlight': float(np.percentile(lum[inside], 99) - np.median(lum[inside])),
      'texture': float(np.median(np.abs(high_pass[core]))),
      'edges': float(np.percentile(np.abs(high_pass[core]), 90)),  # Streaks, rims, stitches.
      'contrast': float(lum[inside].std()),
  }


def _mean_stats(material):
  stats = [_surface_stats(*_render(cat, col, 0, [cat, col, 11], material=material))
           for cat in range(N_CAT) for col in range(N_COL)]
  return {k: np.mean([s[k] for s in stats]) for k in stats[0]}


def test_materials_differ_measurably():
  fabric, plastic, metal, leather = (_mean_stats(m) for m in range(N_MAT))
  # Texture (median high-pass magnitude): the weave, then the leather grain; plastic is smooth.
  assert fabric['texture'] > 1.6 * leather['texture'], (fabric, leather)
  assert leather['texture'] > 5 * plastic['texture'], (leather, plastic)
  assert metal['texture'] > 3 * plastic['texture'], (metal, plastic)
  # Highlights: plastic's white lamp spot, metal's reflections, leather's soft sheen; the matte
  # fabric has none.
  assert plastic['near_white'] > metal['near_white'] > 0
  assert fabric['near_white'] == 0 and leather['near_white'] == 0
  for glossy in (plastic, metal):
    assert glossy['highlight'] > 2.5 * leather['highlight'], (glossy, leather)
  assert leather['highlight'] > 1.2 * fabric['highlight'], (leather, fabric)
  # Metal: the highest contrast (bright sky, dark floor) and hard-edged bands and streaks.
  for other in (fabric, plastic, leather):
    assert metal['contrast'] > 1.25 * other['contrast'], (metal, other)
  for other in (plastic, leather):
    assert metal['edges'] > 2.5 * other['edges'], (metal, other)


def test_material_is_recognisable_from_four_statistics():
  """A nearest-centroid classifier on four of the statistics above tells the materials apart."""
  def features(seed, cat, material):
    img, cov = _render(cat, (seed * 5 + cat) % N_COL, 0, [seed, cat, material, 3],
                       material=material)
    stats = _surface_stats(img, cov)
    return np.log1p([stats[k] for k in ('highlight', 'texture', 'edges', 'contrast')])
  train = np.array([[features(s, c, m) for s in range(4) for c in range(N_CAT)]
                    for m in range(N_MAT)])  # [material, example, feature]
  mu, sd = train.reshape(-1, 4).mean(0), train.reshape(-1, 4).std(0) + 1e-6
  centroids = ((train - mu) / sd).mean(axis=1)
  correct = total = 0
  for m in range(N_MAT):
    for s in range(100, 104):
      for c in range(N_CAT):
        f = (features(s, c, m) - mu) / sd
        correct += int(np.argmin(((centroids - f) ** 2).sum(-1)) == m)
        total += 1
  assert correct / total >= 0.9


def test_colour_label_stays_nearest_under_every_material():
  for cat, col, mat in itertools.product(range(N_CAT), range(N_COL), range(N_MAT)):
    for seed in range(2):
      img, cov = _render(cat, col, 0, [seed, cat, col, mat], material=mat)
      mean = img[cov > 0.99].astype(np.float64).mean(axis=0)
      nearest = np.argmin(np.linalg.norm(PALETTE - mean, axis=1))
      assert nearest == col, (render.CATEGORIES[cat], list(render.COLOURS)[col],
                              render.MATERIALS[mat], mean)


def test_patterns_stay_legible_under_every_material():
  """Same product and nuisance (same seed), solid vs patterned: a good part of the product
  changes colour clearly under every material."""
  for cat, col, mat in itertools.product(range(N_CAT), range(N_COL), range(N_MAT)):
    solid, cov = _render(cat, col, 0, [cat, col, mat], material=mat)
    inside = cov > 0.99
    for pat in range(1, N_PAT):
      img, _ = _render(cat, col, pat, [cat, col, mat], material=mat)
      changed = np.linalg.norm(img.astype(np.float64) - solid, axis=-1)[inside] > 40
      assert changed.mean() > 0.15, (cat, col, render.MATERIALS[mat], render.PATTERNS[pat])


def test_material_changes_only_the_surface():
  """The silhouette, background and shadow of a seed do not depend on the material."""
  for cat in range(N_CAT):
    renders = [_render(cat, 3, 1, [cat, 5], material=m) for m in [None, *range(N_MAT)]]
    for img, cov in renders[1:]:
      np.testing.assert_array_equal(cov, renders[0][1])
      np.testing.assert_array_equal(img[cov == 0], renders[0][0][cov == 0])
    distinct = {hashlib.sha1(img.tobytes()).hexdigest() for img, _ in renders}
    assert len(distinct) == len(renders)


@pytest.mark.parametrize('material', range(N_MAT))
def test_material_looks_the_same_at_128_px(material):
  """Textures live in product units: a 128 px render, box-downsampled, is close to the 64 px one."""
  for cat in (0, 3, 5):
    small, cov = _render(cat, 4, 0, [cat, 1], 64, material)
    large, _ = _render(cat, 4, 0, [cat, 1], 128, material)
    down = large.astype(np.float64).reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
    inside = _erode(cov > 0.99, 1)
    assert np.abs(down - small)[inside].mean() < 14, (cat, render.MATERIALS[material])


# ----------------------------------------------------------------------------- builder

def _build(data_dir):
  builder = tfds.builder('synthetic_products/tiny', data_dir=str(data_dir))
  builder.download_and_prepare()
  return builder


def _digest(ex):
  return (hashlib.sha1(ex['image'].tobytes()).hexdigest(), int(ex['category']),
          int(ex['colour']), int(ex['pattern']), int(ex.get('material', -1)))


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
  assert info.features['material'].names == list(render.MATERIALS)
  assert str(info.version) == '1.1.0'
  assert info.features['image'].shape == (64, 64, 3)
  assert info.supervised_keys is None
  assert info.metadata['colour_rgb']['navy'] == [0, 0, 128]
  examples = list(tfds.as_numpy(train))
  assert len(examples) == 512
  assert examples[0]['image'].dtype == np.uint8 and examples[0]['image'].shape == (64, 64, 3)
  # Uniform attributes: every value shows up in 512 draws.
  for key, n in (('category', N_CAT), ('colour', N_COL), ('pattern', N_PAT),
                 ('material', N_MAT)):
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


def _micro(version):
  """A few examples of `version` (tfds.builder takes a config object), to keep tests quick."""
  config = synthetic_products.SyntheticProductsConfig(name='micro', num_train=16, num_test=8)
  return config, version


def test_version_1_0_0_still_builds_and_loads_image_for_image(tmp_path):
  """1.0.0 (no material) builds next to 1.1.0 in one data_dir and renders as before."""
  builders = {}
  for version in ('1.0.0', '1.1.0'):
    builders[version] = tfds.builder('synthetic_products', config=_micro(version)[0],
                                     version=version, data_dir=str(tmp_path))
    builders[version].download_and_prepare()
  old, new = builders['1.0.0'].info, builders['1.1.0'].info
  assert 'material' not in old.features and 'material' in new.features
  assert str(old.version) == '1.0.0' and str(new.version) == '1.1.0'
  old_examples = list(tfds.as_numpy(builders['1.0.0'].as_dataset(split='train')))
  assert all('material' not in ex for ex in old_examples)
  expected = sorted(_digest(synthetic_products.make_example(0, 0, i, material=False))
                    for i in range(16))
  assert sorted(_digest(ex) for ex in old_examples) == expected
  # Same attributes per index in both versions (the material is drawn after them); the images
  # differ by the material's surface only.
  for i in range(16):
    a = synthetic_products.make_example(0, 0, i, material=False)
    b = synthetic_products.make_example(0, 0, i)
    assert [a[k] for k in ('category', 'colour', 'pattern')] == \
        [b[k] for k in ('category', 'colour', 'pattern')]
  # A data_dir holding only 1.0.0 is read back by pinning the version.
  reread = tfds.builder('synthetic_products', config=_micro('1.0.0')[0], version='1.0.0',
                        data_dir=str(tmp_path))
  assert reread.info.splits['test'].num_examples == 8


def test_128px_config():
  builder = tfds.builder('synthetic_products/128px')
  assert builder.info.features['image'].shape == (128, 128, 3)
  assert builder.info.features['material'].names == list(render.MATERIALS)
  assert builder.builder_config.num_train == 20000
  ex = synthetic_products.make_example(0, 0, 0, 128)
  assert ex['image'].shape == (128, 128, 3) and 0 <= ex['material'] < N_MAT


def test_config_validation():
  with pytest.raises(ValueError, match='num_train must be a positive int'):
    synthetic_products.SyntheticProductsConfig(name='bad', num_train=0)
  with pytest.raises(ValueError, match='seed'):
    synthetic_products.SyntheticProductsConfig(name='bad', seed=-1)
