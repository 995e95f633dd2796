"""The commands' shared conventions: one flag style (gan/flag_style.py) and quiet output
(gan/quiet.py)."""
import argparse
import logging
import os
import re

import numpy as np
import pytest
from PIL import Image

from gan import errors, flag_style, quiet
from tests.conftest import REPO, assert_clean_error, run_tool

# ---- One flag style: dashed, the underscore spelling still accepted ----


def test_respell():
  argv = ['prog', '--out_dir=a_b', '--frame-ms', '5', '--config.model.d_norm=spectral', '-v',
          '--', '--out_dir']
  assert flag_style.respell(argv) == ['prog', '--out-dir=a_b', '--frame-ms', '5',
                                      '--config.model.d_norm=spectral', '-v', '--', '--out_dir']
  own = ('allow-config-change', 'num-processes')
  assert flag_style.respell(['--allow_config_change', '--noallow_config_change', '--num_processes=2',
                             '--log_dir=x', '--config.batch_size=8'], own) == [
      '--allow-config-change', '--noallow-config-change', '--num-processes=2', '--log_dir=x',
      '--config.batch_size=8']


def _parsers():
  from gan import evaluate, invert, sample
  from gan.data import catalog
  return {
      'gan.sample': (sample.build_parser(), ['--workdir', 'w'], 'frame-ms', '7', 'frame_ms', 7),
      'gan.invert': (invert.build_parser(), ['--workdir', 'w', '--image', 'p'], 'save-latent',
                     'z.npz', 'save_latent', 'z.npz'),
      'gan.evaluate': (evaluate.build_parser(), ['--workdir', 'w'], 'num-samples', '64',
                       'num_samples', 64),
      'gan.data.catalog': (catalog._parser(), ['build', '--source', 's'], 'data-dir', 'd',
                           'data_dir', 'd'),
  }


@pytest.mark.parametrize('tool', ['gan.sample', 'gan.invert', 'gan.evaluate', 'gan.data.catalog'])
def test_argparse_tools_take_both_spellings_and_show_the_dashed_one(tool):
  parser, base, flag, value, dest, want = _parsers()[tool]
  for spelling in (flag, flag.replace('-', '_')):
    assert getattr(parser.parse_args(base + [f'--{spelling}', value]), dest) == want
    assert getattr(parser.parse_args(base + [f'--{spelling}={value}']), dest) == want
  assert parser.parse_args(base + [f'--{flag}', value, '--verbosity', '1']).verbosity == 1
  assert f'--{flag}' in _help(parser) and f'--{dest}' not in _help(parser)


def _help(parser):
  """--help of the parser and of its sub-commands."""
  commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
  return parser.format_help() + ''.join(p.format_help() for a in commands
                                        for p in a.choices.values())


def test_main_takes_both_spellings():
  from absl import flags
  from gan import main
  FLAGS = flags.FLAGS
  config = os.path.join(REPO, 'configs', 'default.py')
  try:
    for argv in (['--allow-config-change', '--num-processes=2', '--process-id', '1'],
                 ['--allow_config_change', '--num_processes=2', '--process_id', '1']):
      assert main.parse_flags(['gan.main', f'--config={config}', *argv]) == ['gan.main']
      assert FLAGS['allow-config-change'].value is True
      assert (FLAGS['num-processes'].value, FLAGS['process-id'].value) == (2, 1)
      FLAGS.unparse_flags()
  finally:
    FLAGS.unparse_flags()
  assert '--[no]allow-config-change' in FLAGS.module_help(main.__name__)


# ---- Quiet tools ----

def test_quiet_environment_only_for_the_tools_and_never_over_the_user():
  env = {}
  quiet.quiet_libraries(env, ['python', '-m', 'gan.sample', '--workdir', 'w'])
  assert env == quiet.QUIET_ENVIRONMENT
  env = {'TF_CPP_MIN_LOG_LEVEL': '0'}
  quiet.quiet_libraries(env, ['python', '-X', 'importtime', '-m', 'gan.data.catalog', 'build'])
  assert env == dict(quiet.QUIET_ENVIRONMENT, TF_CPP_MIN_LOG_LEVEL='0')  # The user's value stays.
  env = {}
  quiet.quiet_libraries(env, ['python', '-W', 'ignore', '-mgan.evaluate', '--verb=0'])
  assert env == quiet.QUIET_ENVIRONMENT
  for argv in (['python', '-m', 'gan.main', '--config=c.py'], ['python', '-m', 'pytest'],
               ['python', '-m', 'gan.evaluate', '--verbosity=1'],
               ['python', '-m', 'gan.invert', '--verbosity', '2'], ['python', '-m', 'gan.sample',
               '--verb=1'], ['python', 'script.py', '-m', 'gan.sample'], ['python', '-m']):
    env = {}
    quiet.quiet_libraries(env, argv)
    assert env == {}, argv


def _record(level, path):
  return logging.LogRecord('absl', level, path, 1, 'message', None, None)


def test_logs_keep_our_warnings_and_everyone_s_errors_then_restore():
  absl_logger = logging.getLogger('absl')
  before = absl_logger.level, logging.root.level, list(absl_logger.filters)
  ours = os.path.join(REPO, 'gan', 'control', 'loading.py')
  library = '/site-packages/orbax/checkpoint/checkpoint_manager.py'
  with quiet.logs(0):
    assert not absl_logger.isEnabledFor(logging.INFO)
    assert not logging.getLogger('jax._src.xla_bridge').isEnabledFor(logging.WARNING)
    assert absl_logger.filter(_record(logging.WARNING, ours))
    assert absl_logger.filter(_record(logging.ERROR, library))
    assert not absl_logger.filter(_record(logging.WARNING, library))
  assert (absl_logger.level, logging.root.level, absl_logger.filters) == before
  with quiet.logs(1):
    assert absl_logger.isEnabledFor(logging.INFO)
    assert absl_logger.filter(_record(logging.WARNING, library))
  assert (absl_logger.level, logging.root.level, absl_logger.filters) == before


# Start-up and library lines a user of the tools should not see by default.
NOISE = re.compile(r'oneDNN|absl::InitializeLog|cpu_feature_guard|cache_dataset_ops|read_only=True|'
                   r'^[IWE]\d{4} |^(INFO|WARNING|DEBUG):(absl|jax|tensorflow)', re.M)


def test_sample_prints_only_its_own_lines(trained_run_dir, tmp_path):
  proc = run_tool(['-m', 'gan.sample', f'--workdir={trained_run_dir}', '--num', '2',
                   '--out_dir', str(tmp_path / 'images')], unset=['TF_CPP_MIN_LOG_LEVEL'])
  assert proc.returncode == 0, proc.stderr[-4000:]
  assert 'wrote 2 images' in proc.stdout
  assert not NOISE.search(proc.stdout + proc.stderr), proc.stderr[-4000:]


def test_catalog_build_prints_only_its_own_lines(tmp_path):
  for category in ('mug', 'bag'):
    (tmp_path / 'photos' / category).mkdir(parents=True)
    for i in range(2):
      Image.fromarray(np.full((12, 12, 3), 40 * i, np.uint8)).save(
          tmp_path / 'photos' / category / f'{i}.png')
  proc = run_tool(['-m', 'gan.data.catalog', 'build', '--source', str(tmp_path / 'photos'),
                   '--data_dir', str(tmp_path / 'data'), '--resolution', '8', '--holdout', '0'],
                  unset=['TF_CPP_MIN_LOG_LEVEL'])
  assert proc.returncode == 0, proc.stderr[-4000:]
  assert "Built catalogue 'catalog'" in proc.stdout and 'Decoding 4 images' in proc.stderr
  assert not NOISE.search(proc.stdout + proc.stderr), proc.stderr[-4000:]


def test_verbosity_brings_the_logs_back_and_errors_stay(trained_run_dir, tmp_path):
  args = ['-m', 'gan.evaluate', f'--workdir={trained_run_dir}', '--checkpoint', '3',
          '--output', str(tmp_path / 'eval.json')]
  quiet_run = run_tool(args, unset=['TF_CPP_MIN_LOG_LEVEL'])
  loud_run = run_tool(args + ['--verbosity=1'])
  for proc in (quiet_run, loud_run):
    assert_clean_error(proc, errors.EXIT_USAGE, 'No checkpoint for step 3')
  assert not NOISE.search(quiet_run.stderr), quiet_run.stderr[-4000:]
  assert 'INFO:' in loud_run.stderr, loud_run.stderr[-4000:]
