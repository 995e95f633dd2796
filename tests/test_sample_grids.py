"""Sample grids: the default row attribute against every other one, or explicit (rows, columns)
pairs; a catalogue with material gets a category x material grid."""
import numpy as np
import pytest

from gan import rundir, samples
from gan.data.vocab import Vocabulary

VOCAB = Vocabulary.from_dict({'category': ['mug', 'bag', 'shoe'], 'colour': ['red', 'navy'],
                              'pattern': ['solid', 'striped'],
                              'material': ['fabric', 'plastic', 'metal', 'leather']})


def _check_grid(grid, vocab, row_attr, col_attr):
  r, c = vocab.index_of(row_attr), vocab.index_of(col_attr)
  assert (grid.rows, grid.cols) == (vocab.num_classes[r], vocab.num_classes[c])
  cells = grid.labels.reshape(grid.rows, grid.cols, -1)
  np.testing.assert_array_equal(cells[:, :, r], np.arange(grid.rows)[:, None].repeat(grid.cols, 1))
  np.testing.assert_array_equal(cells[:, :, c], np.arange(grid.cols)[None].repeat(grid.rows, 0))
  others = [a for a in range(len(vocab)) if a not in (r, c)]
  np.testing.assert_array_equal(grid.labels[:, others], vocab.unspecified()[others][None]
                                .repeat(len(grid.labels), 0))


def test_default_grids_include_category_x_material():
  grids = samples.grid_specs(VOCAB, ('category', 'colour'))
  assert [g.name for g in grids] == ['category_x_colour', 'category_x_pattern',
                                     'category_x_material']
  _check_grid(grids[2], VOCAB, 'category', 'material')


def test_explicit_pairs_give_exactly_those_grids():
  pairs = (('category', 'colour'), ('category', 'material'), ('material', 'pattern'))
  grids = samples.grid_specs(VOCAB, pairs)
  assert [g.name for g in grids] == ['category_x_colour', 'category_x_material',
                                     'material_x_pattern']
  for grid, pair in zip(grids, pairs):
    _check_grid(grid, VOCAB, *pair)
  # The spelling 'color' is the colour attribute, as everywhere else.
  assert samples.grid_specs(VOCAB, (('color', 'category'),))[0].name == 'colour_x_category'


def test_pairs_survive_the_config_json_round_trip():
  # config.json stores tuples as lists; loading turns them back into (nested) tuples.
  loaded = rundir._tuples([['category', 'colour'], ['category', 'material']])
  assert loaded == (('category', 'colour'), ('category', 'material'))
  assert [g.name for g in samples.grid_specs(VOCAB, loaded)] == ['category_x_colour',
                                                                 'category_x_material']


@pytest.mark.parametrize('pairs, message', [
    ((('category', 'finish'),), "Unknown attribute 'finish'.*category, colour, pattern, material"),
    ((('category',),), 'must be a pair of attribute names'),
    ((('category', 'colour', 'pattern'),), 'must be a pair of attribute names'),
    (('category', ('colour', 'pattern')), 'must be a pair of attribute names'),
    ((('colour', 'color'),), 'two different attributes'),
])
def test_bad_pairs_are_clear_errors(pairs, message):
  with pytest.raises(ValueError, match=message):
    samples.grid_specs(VOCAB, pairs)


def test_pairs_on_an_unconditional_model_give_the_latent_grid():
  grids = samples.grid_specs(Vocabulary.from_dict({}), (('category', 'material'),))
  assert [(g.name, g.rows, g.cols) for g in grids] == [('samples', 8, 8)]


def test_a_vocabulary_without_material_keeps_its_grids():
  """A run trained before material (synthetic_products 1.0.0) draws the grids it always drew."""
  old = Vocabulary.from_dict({k: VOCAB.values(k) for k in ('category', 'colour', 'pattern')})
  assert [g.name for g in samples.grid_specs(old, ('category', 'colour'))] == [
      'category_x_colour', 'category_x_pattern']
