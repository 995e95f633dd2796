"""The run directory: one atomic writer, one reader with clear errors, one config loader."""
import json
import os

import pytest

from configs import default
from gan import rundir


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
  path = str(tmp_path / 'sub' / 'f.json')
  rundir.write_json(path, {'b': 1, 'a': [1, 2]})
  assert json.loads(open(path).read()) == {'b': 1, 'a': [1, 2]}
  rundir.atomic_write(path, b'\x00bytes')
  assert open(path, 'rb').read() == b'\x00bytes'

  class Unwritable:  # A failure mid-write keeps the old file and cleans its temporary up.
    def __str__(self):
      raise RuntimeError('boom')
  with pytest.raises(TypeError):
    rundir.atomic_write(path, Unwritable())
  assert open(path, 'rb').read() == b'\x00bytes'
  assert os.listdir(tmp_path / 'sub') == ['f.json']


def test_read_run_file_says_what_is_missing_or_damaged(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'No vocabulary.json in .*gan.main --workdir'):
    rundir.read_run_file(str(tmp_path), rundir.VOCABULARY, json.loads, 'Fix it.')
  (tmp_path / rundir.VOCABULARY).write_text('{"attributes": [')
  with pytest.raises(ValueError, match=r'vocabulary.json is damaged .*Fix it\.'):
    rundir.read_run_file(str(tmp_path), rundir.VOCABULARY, json.loads, 'Fix it.')


def test_load_config_fills_fields_an_older_run_did_not_have(tmp_path):
  config = default.get_config()
  config.data.augment = ('flip',)
  rundir.save_config(str(tmp_path), config)
  saved = json.loads((tmp_path / rundir.CONFIG).read_text())
  del saved['mode_seeking_weight']  # As in a workdir written before the field existed.
  (tmp_path / rundir.CONFIG).write_text(json.dumps(saved))
  loaded = rundir.load_config(str(tmp_path))
  assert loaded.mode_seeking_weight == default.get_config().mode_seeking_weight
  assert loaded.data.augment == ('flip',)  # JSON lists come back as the tuples configs use.
  (tmp_path / rundir.CONFIG).write_text('[1, 2]')
  with pytest.raises(ValueError, match='config.json is damaged'):
    rundir.load_config(str(tmp_path))


def test_paths_inside_a_workdir(tmp_path):
  assert rundir.sample_grid_path('gs://b/run', 'samples', 42) == 'gs://b/run/samples/samples_0000042.png'
  assert rundir.eval_report_path(str(tmp_path), 7) == os.path.join(str(tmp_path), 'eval_7.json')
  assert os.path.isabs(rundir.join('relative/run', rundir.CHECKPOINTS))
