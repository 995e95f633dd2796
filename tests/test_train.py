"""End to end: train_and_evaluate writes TensorBoard events, checkpoints and PNG grids; resumes."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

from gan import checkpoint, samples, train
from gan.data import label_prior
from gan.data.vocab import Vocabulary
from tests.conftest import tiny_config

SCALAR_TAGS = {'d_loss_real', 'd_loss_fake', 'g_loss', 'd_real', 'd_fake', 'g_learning_rate',
               'd_learning_rate', 'input_wait_fraction', 'steps_per_sec'}


def _events(workdir):
  acc = event_accumulator.EventAccumulator(workdir, size_guidance={'tensors': 0, 'images': 0})
  acc.Reload()
  return acc


def test_train_writes_summaries_checkpoints_grids_and_resumes(tfds_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  config = tiny_config(**{'data.data_dir': tfds_dir})
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 4

  acc = _events(workdir)
  tags = set(acc.Tags()['tensors'])
  missing = SCALAR_TAGS - tags
  assert not missing, f'missing summaries {missing}; have {sorted(tags)}'
  assert [e.step for e in acc.Tensors('g_loss')] == [2, 4]
  assert {'samples/category_x_colour', 'samples/category_x_pattern',
          'samples/category_x_material'} <= tags
  # What D's attribute heads read, by attribute name (on real images and on G's fakes).
  assert {f'd_heads_{kind}_acc/{name}' for kind in ('real', 'fake')
          for name in ('category', 'colour', 'pattern', 'material')} <= tags

  assert checkpoint.Checkpointer(workdir).steps() == [2, 4]
  vocab = Vocabulary.load(workdir)
  assert vocab.names == ('category', 'colour', 'pattern', 'material')
  grid = Image.open(os.path.join(workdir, 'samples', 'category_x_colour_0000004.png'))
  n_cat, n_col = vocab.num_classes[0], vocab.num_classes[1]
  assert grid.size == (n_col * 18 + 2, n_cat * 18 + 2)  # 16px cells + 2px padding.
  assert len(glob.glob(os.path.join(workdir, 'samples', 'category_x_pattern_*.png'))) == 2
  # The training labels' distribution is saved for the sampling tools.
  prior = label_prior.load(workdir, vocab.names, vocab.num_classes)
  split_size = tfds.builder(config.data.name, data_dir=tfds_dir).info.splits['train'].num_examples
  assert prior.counts.sum() == split_size

  # Same workdir, more steps: resumes at 4 and continues to 6.
  config.num_train_steps = 6
  resumed = train.train_and_evaluate(config, workdir)
  assert int(resumed.step) == 6
  assert checkpoint.Checkpointer(workdir).steps() == [2, 4, 6]
  acc = _events(workdir)
  assert [e.step for e in acc.Tensors('g_loss')] == [2, 4, 6]
  values = [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors('g_loss')]
  assert all(np.isfinite(values)), values


def test_sample_grids_draw_the_free_attributes_from_the_catalogue():
  vocab = Vocabulary.from_dict({'category': ['mug', 'bag'], 'colour': ['red', 'navy', 'teal'],
                                'pattern': ['solid', 'striped']})
  # Only striped red mugs and solid bags of any colour exist.
  combos = [(0, 0, 1)] * 5 + [(1, c, 0) for c in range(3)]
  prior = label_prior.LabelPrior.from_labels(combos, vocab.names, vocab.num_classes)
  config = tiny_config(**{'sample.grid_attributes': ('category', 'colour')})
  writer = train.SampleWriter(config, vocab, '/unused', None, prior)
  by_name = {g.name: g for g in writer.grids}
  grid = by_name['category_x_colour']
  expected = samples.grid_specs(vocab, ('category', 'colour'))[0].labels
  np.testing.assert_array_equal(grid.labels[:, :2], expected[:, :2])  # Rows and columns as asked.
  assert grid.labels[0, 2] == 1  # Red mugs are striped,
  np.testing.assert_array_equal(grid.labels[3:, 2], 0)  # bags solid,
  assert np.all(grid.labels[1:3, 2] < 2)  # and unseen mugs still get a real pattern.
  no_prior = train.SampleWriter(config, vocab, '/unused', None)
  assert np.all(no_prior.grids[0].labels[:, 2] == 2)  # The model's "unspecified".


def test_config_errors_before_any_work(tmp_path):
  workdir = str(tmp_path / 'bad')
  with pytest.raises(ValueError, match='Valid loss names'):
    train.train_and_evaluate(tiny_config(loss='bce'), workdir)
  with pytest.raises(ValueError, match='multiple of the number of devices'):
    train.train_and_evaluate(tiny_config(batch_size=12), workdir)
  with pytest.raises(ValueError, match='power-of-two resolution'):
    train.train_and_evaluate(tiny_config(**{'data.resolution': 24}), workdir)
  with pytest.raises(ValueError, match='aux_classifier_weight must be >= 0'):
    train.train_and_evaluate(tiny_config(aux_classifier_weight=-1.0), workdir)
  assert not os.path.exists(workdir)
