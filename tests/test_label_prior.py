"""The catalogue's label distribution: counting, conditional filling, persistence, bad files."""
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan import rundir
from gan.data import label_prior, pipeline

NAMES, SIZES = ('category', 'colour', 'pattern'), (2, 3, 2)
U = np.asarray(SIZES)  # "unspecified" per attribute


def _prior():
  # category 0 comes in colour 0 (striped 3x, solid 1x) and colour 1 (solid); category 1 in colour 2.
  labels = [(0, 0, 1)] * 30 + [(0, 0, 0)] * 10 + [(0, 1, 0)] * 20 + [(1, 2, 1)] * 40
  return label_prior.LabelPrior.from_labels(labels, NAMES, SIZES)


def test_counts_and_marginals():
  prior = _prior()
  assert [tuple(c) for c in prior.combinations] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 2, 1)]
  np.testing.assert_array_equal(prior.counts, [10, 30, 20, 40])
  np.testing.assert_allclose(prior.marginal(1), [0.4, 0.2, 0.4])


def test_fill_draws_free_attributes_given_the_specified_ones():
  prior = _prior()
  rng = np.random.default_rng(0)
  asked = np.tile([0, 0, U[2]], (4000, 1))  # category 0, colour 0: pattern free
  filled = prior.fill(asked, rng)
  np.testing.assert_array_equal(filled[:, :2], asked[:, :2])
  assert abs(np.mean(filled[:, 2] == 1) - 0.75) < 0.03  # 30 striped vs 10 solid
  # Two free attributes come together from one catalogue combination: never an unseen pair.
  filled = prior.fill(np.tile([0, U[1], U[2]], (2000, 1)), rng)
  seen = {tuple(c) for c in prior.combinations}
  assert {tuple(r) for r in filled} <= seen
  assert abs(np.mean(filled[:, 1] == 1) - 20 / 60) < 0.04
  # Fully specified rows are left alone, even ones the catalogue never shows.
  np.testing.assert_array_equal(prior.fill([[1, 0, 0]], rng), [[1, 0, 0]])
  # Rows with different specified values are filled independently, in one call.
  mixed = prior.fill([[1, U[1], U[2]], [0, 1, U[2]]], rng)
  np.testing.assert_array_equal(mixed, [[1, 2, 1], [0, 1, 0]])


def test_fill_falls_back_to_marginals_and_is_reproducible():
  prior = _prior()
  # Category 1 never comes in colour 0: the pattern is drawn from its marginal (70% striped).
  filled = prior.fill(np.tile([1, 0, U[2]], (4000, 1)), np.random.default_rng(1))
  assert np.all(filled[:, :2] == [1, 0]) and abs(np.mean(filled[:, 2] == 1) - 0.7) < 0.03
  a = prior.fill(np.tile(U, (50, 1)), np.random.default_rng([7, 1]))
  b = prior.fill(np.tile(U, (50, 1)), np.random.default_rng([7, 1]))
  np.testing.assert_array_equal(a, b)
  assert len({tuple(r) for r in a}) > 1


def test_invalid_distributions_are_refused():
  with pytest.raises(ValueError, match='outside its attribute'):
    label_prior.LabelPrior.from_labels([(0, 3, 0)], NAMES, SIZES)
  with pytest.raises(ValueError, match='do not match the attributes'):
    label_prior.LabelPrior.from_labels([(0, 1)], NAMES[:2], SIZES)


def test_save_load_and_bad_files(tmp_path):
  prior = _prior()
  prior.save(str(tmp_path))
  loaded = label_prior.load(str(tmp_path), NAMES, SIZES)
  np.testing.assert_array_equal(loaded.combinations, prior.combinations)
  np.testing.assert_array_equal(loaded.counts, prior.counts)
  assert label_prior.load(str(tmp_path / 'elsewhere'), NAMES, SIZES) is None
  with pytest.raises(ValueError, match='is for attributes .* but the model has'):
    label_prior.load(str(tmp_path), ('category', 'colour', 'size'), SIZES)
  path = tmp_path / rundir.LABEL_DISTRIBUTION
  path.write_text(json.dumps({'attributes': list(NAMES), 'num_classes': list(SIZES),
                              'combinations': [[0, 5, 0]], 'counts': [1]}))
  with pytest.raises(ValueError, match='is damaged .* Delete'):
    label_prior.load(str(tmp_path), NAMES, SIZES)
  path.write_text('{"attributes": [')
  with pytest.raises(ValueError, match='is damaged'):
    label_prior.load(str(tmp_path), NAMES, SIZES)


def test_from_split_counts_the_dataset_and_ensure_repairs(tfds_dir, tmp_path):
  spec = pipeline.open_dataset('synthetic_products/tiny', tfds_dir)
  vocab = spec.vocabulary
  ds = tfds.load('synthetic_products/tiny', split='train', data_dir=tfds_dir)
  labels = np.array([[int(ex[n]) for n in vocab.names] for ex in tfds.as_numpy(ds)])
  prior = label_prior.from_split(spec, 'train')
  expected = label_prior.LabelPrior.from_labels(labels, vocab.names, vocab.num_classes)
  np.testing.assert_array_equal(prior.combinations, expected.combinations)
  np.testing.assert_array_equal(prior.counts, expected.counts)
  assert prior.counts.sum() == len(labels)

  (tmp_path / rundir.LABEL_DISTRIBUTION).write_text('not json')
  repaired = label_prior.ensure(str(tmp_path), spec, 'train')
  np.testing.assert_array_equal(repaired.counts, prior.counts)
  assert label_prior.load(str(tmp_path), vocab.names, vocab.num_classes) is not None
