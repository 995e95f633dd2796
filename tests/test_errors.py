"""Every failure a user can fix is one sentence and an exit code (gan/errors.py), never a traceback.

Each test runs the real command in a subprocess, as a user would, and checks the exit code, the
message's key words and that no traceback is printed.
"""
import glob
import json
import os
import shutil
import socket
import time

import numpy as np
import pytest
from PIL import Image

from gan import checkpoint, errors
from tests.conftest import assert_clean_error, run_tool

CONFIG_FILE = """
from tests.conftest import tiny_config

def get_config():
  return tiny_config(**{overrides!r})
"""


def _config(tmp_path, tfds_dir, **overrides):
  """A config file for gan.main: the tiny config of the shared trained run, plus overrides."""
  overrides = {'data.data_dir': tfds_dir, 'num_train_steps': 4, 'sample_every_steps': 0,
               **overrides}
  path = tmp_path / 'cfg.py'
  path.write_text(CONFIG_FILE.format(overrides=overrides))
  return str(path)


def _copy(run_dir, tmp_path):
  copy = str(tmp_path / 'run')
  shutil.copytree(run_dir, copy)
  return copy


def _damage(workdir, step):
  for f in glob.glob(os.path.join(checkpoint.checkpoint_dir(workdir), str(step), 'state', '**',
                                  'd', '*'), recursive=True):
    with open(f, 'r+b') as fh:
      fh.truncate(os.path.getsize(f) // 2)


def _main(config, workdir, *flags):
  return run_tool(['-m', 'gan.main', f'--config={config}', f'--workdir={workdir}', *flags])


# ---- gan.main ----

def test_main_missing_config_file(tmp_path):
  proc = _main(str(tmp_path / 'nope.py'), tmp_path / 'run')
  assert_clean_error(proc, errors.EXIT_USAGE, 'nope.py: no such file', 'configs/dcgan_products.py')


def test_main_setting_rejected_by_validate_config(tmp_path, tfds_dir):
  proc = _main(_config(tmp_path, tfds_dir), tmp_path / 'run', '--config.attribute_dropout=1.5')
  assert_clean_error(proc, errors.EXIT_USAGE, 'attribute_dropout must be in [0, 1)', '--config.')
  assert not os.path.exists(tmp_path / 'run')


def test_main_eval_setting_rejected_by_validate_config(tmp_path, tfds_dir):
  proc = _main(_config(tmp_path, tfds_dir), tmp_path / 'run',
               "--config.eval.metrics=('fid','fidd')")
  assert_clean_error(proc, errors.EXIT_USAGE,
                     "config.eval.metrics: Unknown evaluation metric 'fidd'", 'precision_recall',
                     '--config.')
  assert not os.path.exists(tmp_path / 'run')


def test_main_locked_workdir_names_the_holder(tmp_path, tfds_dir):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  holder = {'host': socket.gethostname(), 'pid': os.getpid(), 'started': time.time(),
            'heartbeat': time.time()}  # This (live) test process holds the lock.
  (workdir / 'train.lock').write_text(json.dumps(holder))
  proc = _main(_config(tmp_path, tfds_dir), workdir)
  assert_clean_error(proc, errors.EXIT_WORKDIR_LOCKED, 'Another training run is using this workdir',
                     f'host {socket.gethostname()}', f'pid {os.getpid()}', '--workdir')
  assert json.loads((workdir / 'train.lock').read_text()) == holder  # Not taken over.


def test_main_resume_under_a_changed_config(tmp_path, tfds_dir, trained_run_dir):
  workdir = _copy(trained_run_dir, tmp_path)
  proc = _main(_config(tmp_path, tfds_dir, **{'model.g_width': 16, 'num_train_steps': 6}), workdir)
  assert_clean_error(proc, errors.EXIT_CONFIG_CHANGED, 'model.g_width: checkpoint has 8, this run '
                     'asks for 16', '--allow-config-change')
  assert checkpoint.Checkpointer(workdir, read_only=True).latest_step() == 4


def test_main_divergence_names_step_and_quantity(tmp_path, tfds_dir, trained_run_dir):
  workdir = _copy(trained_run_dir, tmp_path)
  config = _config(tmp_path, tfds_dir, **{'num_train_steps': 6, 'optim.d_lr': 1e38,
                                          'optim.g_lr': 1e38})
  proc = _main(config, workdir)
  assert_clean_error(proc, errors.EXIT_DIVERGED, 'Training diverged at step 5: non-finite',
                     'last good checkpoint is step 4', 'Lower the learning rates')
  assert checkpoint.Checkpointer(workdir, read_only=True).latest_step() == 4


def test_main_every_checkpoint_damaged(tmp_path, tfds_dir, trained_run_dir):
  workdir = _copy(trained_run_dir, tmp_path)
  for step in (2, 4):
    _damage(workdir, step)
  proc = _main(_config(tmp_path, tfds_dir, num_train_steps=6), workdir)
  assert_clean_error(proc, errors.EXIT_CHECKPOINT, 'Every checkpoint in', 'steps [2, 4]',
                     'damaged', 'nothing was moved or deleted')
  assert sorted(os.listdir(checkpoint.checkpoint_dir(workdir))) == ['2', '4']


# ---- Explicit --checkpoint STEP ----

def test_sample_explicit_checkpoint_damaged(tmp_path, trained_run_dir):
  workdir = _copy(trained_run_dir, tmp_path)
  _damage(workdir, 2)
  proc = run_tool(['-m', 'gan.sample', f'--workdir={workdir}', '--checkpoint', '2',
                   '--out', str(tmp_path / 'x.png')])
  assert_clean_error(proc, errors.EXIT_CHECKPOINT, 'checkpoint of step 2', 'damaged',
                     'available: [4]')
  assert not os.path.exists(tmp_path / 'x.png')
  assert os.path.isdir(os.path.join(checkpoint.checkpoint_dir(workdir), '2'))  # Not moved.


def test_evaluate_explicit_checkpoint_missing(tmp_path, trained_run_dir):
  proc = run_tool(['-m', 'gan.evaluate', f'--workdir={trained_run_dir}', '--checkpoint', '3',
                   '--output', str(tmp_path / 'eval.json')])
  assert_clean_error(proc, errors.EXIT_USAGE, 'No checkpoint for step 3', 'available steps: [2, 4]')


# ---- Output destinations, refused before the work ----

def _photo(tmp_path):
  path = tmp_path / 'photo.png'
  Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(path)
  return str(path)


def _read_only_folder(tmp_path):
  folder = tmp_path / 'read_only'
  folder.mkdir()
  folder.chmod(0o555)
  return folder


# (tool, its arguments given tmp_path, key words). Folders and files are made by _layout.
OUTPUT_CASES = {
    'sample --out is a folder': (
        'gan.sample', lambda t: ['--out', str(t / 'folder')], ['--out', 'is a folder']),
    'sample --out-dir is a file': (
        'gan.sample', lambda t: ['--out-dir', str(t / 'file.txt')],
        ['--out-dir', 'is a file, not a folder']),
    'sample parent is a file': (
        'gan.sample', lambda t: ['--out', str(t / 'file.txt' / 'grid.png')],
        ['file.txt is a file, so the folder']),
    'sample read-only --out-dir': (
        'gan.sample', lambda t: ['--out-dir', str(t / 'read_only' / 'images')],
        ['--out-dir', 'cannot write into', 'read_only']),
    'invert --save-latent is a folder': (
        'gan.invert', lambda t: ['--image', _photo(t), '--out', str(t / 'x.png'), '--save-latent',
                                 str(t / 'folder')], ['--save-latent', 'is a folder', 'latent.npz']),
    'invert read-only --out': (
        'gan.invert', lambda t: ['--image', _photo(t), '--out', str(t / 'read_only' / 'x.png')],
        ['--out', 'cannot write into']),
    'evaluate --output is a folder': (
        'gan.evaluate', lambda t: ['--output', str(t / 'folder')], ['--output', 'is a folder']),
    'evaluate read-only --output': (
        'gan.evaluate', lambda t: ['--output', str(t / 'read_only' / 'sub' / 'eval.json')],
        ['--output', 'cannot write into']),
}


@pytest.mark.parametrize('case', sorted(OUTPUT_CASES))
def test_unusable_output_is_refused_before_the_work(tmp_path, trained_run_dir, case):
  tool, args, words = OUTPUT_CASES[case]
  (tmp_path / 'folder').mkdir()
  (tmp_path / 'file.txt').write_text('not a folder')
  _read_only_folder(tmp_path)
  start = time.time()
  proc = run_tool(['-m', tool, f'--workdir={trained_run_dir}', *args(tmp_path)],
                  respect_permissions=True)
  assert_clean_error(proc, errors.EXIT_OUTPUT, *words)
  assert 'checkpoint, step' not in proc.stdout  # Nothing was loaded, let alone optimised.
  assert os.listdir(tmp_path / 'read_only') == []
  assert time.time() - start < 120


def test_write_errors_after_the_check_are_messages(tmp_path, monkeypatch):
  """What the check cannot foresee (a full disk, a bucket refusing writes) still is a sentence:
  gfile's errors are not OSErrors."""
  import tensorflow as tf
  from gan import destinations
  from gan.control import output

  def refuse(*args, **kwargs):
    raise tf.errors.PermissionDeniedError(None, None, 'bucket is read-only')
  monkeypatch.setattr(tf.io.gfile, 'GFile', refuse)
  with pytest.raises(errors.OutputError, match=r'could not write the grid .*x\.png: bucket is '
                                               r'read-only'):
    output.save_grid(np.zeros((1, 4, 4, 3), np.uint8), str(tmp_path / 'x.png'))
  with pytest.raises(KeyError):  # Anything else is a bug and goes through.
    with destinations.writing('x'):
      raise KeyError('bug')


# ---- gan.data.catalog build ----

def _photos(root):
  for category, colour in (('mug', (200, 30, 30)), ('bag', (30, 30, 200))):
    (root / category).mkdir(parents=True)
    for i in range(3):
      Image.fromarray(np.full((20, 20, 3), colour, np.uint8) + i).save(root / category / f'{i}.png')
  return root


def _build(source, data_dir):
  return run_tool(['-m', 'gan.data.catalog', 'build', '--source', str(source), '--data-dir',
                   str(data_dir), '--resolution', '8', '--holdout', '0'],
                  respect_permissions=True)


def test_catalog_unreadable_source(tmp_path):
  source = _photos(tmp_path / 'photos')
  source.chmod(0)
  try:
    proc = _build(source, tmp_path / 'data')
  finally:
    source.chmod(0o755)
  assert_clean_error(proc, 1, '--source', 'cannot be read', 'Permission denied')
  assert not os.path.exists(tmp_path / 'data')


@pytest.mark.parametrize('where,words', [
    ('under_a_file', ['file.txt is a file, so the folder']),
    ('read_only', ['--data-dir', 'cannot write into', 'read_only']),
])
def test_catalog_data_dir_is_checked_before_decoding(tmp_path, where, words):
  source = _photos(tmp_path / 'photos')
  (tmp_path / 'file.txt').write_text('not a folder')
  read_only = _read_only_folder(tmp_path)
  data_dir = {'under_a_file': tmp_path / 'file.txt' / 'data',
              'read_only': read_only / 'data'}[where]
  proc = _build(source, data_dir)
  assert_clean_error(proc, 1, *words)
  assert 'Decoding' not in proc.stderr  # Refused before any image was read.
  assert os.listdir(read_only) == []


def test_catalog_reports_unreadable_sub_folders(tmp_path):
  source = _photos(tmp_path / 'photos')
  (source / 'mug' / 'more').mkdir()
  Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(source / 'mug' / 'more' / 'x.png')
  (source / 'mug' / 'more').chmod(0)
  try:
    proc = _build(source, tmp_path / 'data')
  finally:
    (source / 'mug' / 'more').chmod(0o755)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'unreadable_folder: 1' in proc.stdout
  with open(tmp_path / 'data' / 'catalog' / 'build_report.json') as f:
    skipped = json.load(f)['skipped']
  assert {'path': 'mug/more/', 'reason': 'unreadable_folder', 'detail': 'Permission denied',
          'row': None} in skipped
