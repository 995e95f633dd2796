"""Runs trained before `material` existed (synthetic_products 1.0.0) keep working: they load,
sample and resume on the data they were trained on, and nothing rewrites their vocabulary."""
import json
import os
import shutil

import pytest

from gan import rundir, train
from gan import sample as sample_cli
from gan.control import generation, loading
from gan.data import pipeline
from gan.data.vocab import Vocabulary
from tests.conftest import tiny_config

OLD_NAMES = ('category', 'colour', 'pattern')


@pytest.fixture(scope='module')
def old_run(tmp_path_factory):
  """A tiny run trained on synthetic_products/tiny 1.0.0, its config.json saying
  'synthetic_products/tiny' (no version) as every run written before 1.1.0 says."""
  root = tmp_path_factory.mktemp('old_run')
  data_dir, workdir = str(root / 'tfds'), str(root / 'run')
  config = tiny_config(**{'data.name': 'synthetic_products/tiny:1.0.0', 'data.data_dir': data_dir,
                          'num_train_steps': 2, 'sample_every_steps': 0})
  train.train_and_evaluate(config, workdir)
  path = os.path.join(workdir, rundir.CONFIG)
  with open(path) as f:
    saved = json.load(f)
  saved['data']['name'] = 'synthetic_products/tiny'
  with open(path, 'w') as f:
    json.dump(saved, f)
  return workdir, data_dir


def test_an_old_run_loads_and_samples(old_run, tmp_path):
  workdir, _ = old_run
  assert Vocabulary.load(workdir).names == OLD_NAMES
  run = loading.load_run(workdir, 'latest')
  assert run.vocabulary.names == OLD_NAMES and run.step == 2
  images, _, labels = generation.sample(run, {'category': 'mug'}, num=2, seed=0)
  assert images.shape == (2, 16, 16, 3) and labels.shape == (2, 3)
  with pytest.raises(ValueError, match="Unknown attribute 'material'.*category, colour, pattern"):
    generation.sample(run, {'material': 'metal'}, num=1, seed=0)
  out_dir = str(tmp_path / 'each')
  assert sample_cli.main([f'--workdir={workdir}', '--attr', 'colour=navy', '--num', '2',
                          '--out', str(tmp_path / 'grid.png'), '--out-dir', out_dir]) == 0
  with open(os.path.join(out_dir, 'attributes.json')) as f:
    assert all(set(a) == set(OLD_NAMES) for a in json.load(f).values())


def test_the_dataset_version_a_run_was_trained_on_is_found(old_run):
  _, data_dir = old_run
  old = Vocabulary.load(old_run[0])
  spec = pipeline.open_dataset('synthetic_products/tiny', data_dir, prepare=False, expected=old)
  assert str(spec.builder.version) == '1.0.0' and spec.vocabulary == old
  spec = pipeline.open_dataset('synthetic_products/tiny', data_dir, prepare=False)
  assert str(spec.builder.version) == '1.1.0' and spec.vocabulary.names == OLD_NAMES + (
      'material',)


def test_an_old_run_resumes_on_its_own_data(old_run, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(old_run[0], workdir)
  before = {name: open(os.path.join(workdir, name)).read()
            for name in (rundir.VOCABULARY, rundir.LABEL_DISTRIBUTION)}
  config = tiny_config(**{'data.name': 'synthetic_products/tiny', 'data.data_dir': old_run[1],
                          'num_train_steps': 4, 'sample_every_steps': 0})
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 4
  for name, text in before.items():
    assert open(os.path.join(workdir, name)).read() == text, name


def test_a_run_whose_attributes_no_version_has_is_refused_untouched(old_run, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(old_run[0], workdir)
  other = Vocabulary.from_dict({'category': ['mug'], 'finish': ['matte', 'gloss']})
  other.save(workdir)
  config = tiny_config(**{'data.name': 'synthetic_products/tiny', 'data.data_dir': old_run[1],
                          'num_train_steps': 4, 'sample_every_steps': 0})
  with pytest.raises(ValueError, match=r"were trained with \{'category': \('mug',\), 'finish'"):
    train.train_and_evaluate(config, workdir)
  assert Vocabulary.load(workdir) == other
