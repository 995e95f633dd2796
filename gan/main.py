"""Entry point: python -m gan.main --config=configs/dcgan_products.py [--workdir=DIR]
[--allow-config-change] [--coordinator-address=HOST:PORT --num-processes=N --process-id=I].

Any config field can be overridden: --config.loss=hinge --config.batch_size=128.
A mistake the user can fix ends in one message and an exit code of gan/errors.py, not a traceback.
"""
import os

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from gan import checkpoint as checkpoint_lib
from gan import errors, flag_style, parallel, runtime, train
from gan import workdir as workdir_lib

FLAGS = flags.FLAGS
# Dashed like every command's flags; the underscore spelling still works (parse_flags).
flags.DEFINE_string('workdir', None, 'Where checkpoints, summaries and samples go '
                    '(default: workdirs/<config name>). A gs:// path works on Cloud TPU VMs.')
flags.DEFINE_bool('allow-config-change', False, 'Resume checkpoints written under a config whose '
                  'model/data fields differ from this one (only safe if parameter shapes match).')
flags.DEFINE_string('coordinator-address', None, 'Multi-host: host:port of process 0 (not needed '
                    'on Cloud TPU VMs, where it is discovered). Env: JAX_COORDINATOR_ADDRESS.')
flags.DEFINE_integer('num-processes', None,
                     'Multi-host: number of processes. Env: JAX_NUM_PROCESSES.')
flags.DEFINE_integer('process-id', None, 'Multi-host: this process index. Env: JAX_PROCESS_ID.')
OWN_FLAGS = ('workdir', 'allow-config-change', 'coordinator-address', 'num-processes', 'process-id')
config_flags.DEFINE_config_file('config', None, 'Training configuration file.', lock_config=True)
flags.mark_flags_as_required(['config'])


# Errors the user can fix -> exit code (README "When something goes wrong"). Others are bugs and
# keep their traceback.
EXIT_CODES = (
    (errors.ConfigError, errors.EXIT_USAGE),
    (workdir_lib.WorkdirLockedError, errors.EXIT_WORKDIR_LOCKED),
    (workdir_lib.IncompatibleConfigError, errors.EXIT_CONFIG_CHANGED),
    (train.DivergenceError, errors.EXIT_DIVERGED),
    (checkpoint_lib.CheckpointError, errors.EXIT_CHECKPOINT),
    (checkpoint_lib.CheckpointUnavailableError, errors.EXIT_STORAGE),
)


def default_workdir(config_path: str) -> str:
  name = os.path.splitext(os.path.basename(config_path.split(':')[0]))[0]
  return os.path.join('workdirs', name)


def load_config(path: str):
  """FLAGS.config, checked by train.validate_config; ConfigError says what is wrong with it."""
  config = FLAGS.config
  try:
    config.keys()  # config_flags keeps a file that failed to load as an object raising on access.
  except OSError as e:
    if not os.path.isfile(path.split(':')[0]):
      raise errors.ConfigError(f'--config {path}: no such file. Give a config file, e.g. '
                               '--config=configs/dcgan_products.py.') from None
    raise errors.ConfigError(f'--config {path} could not be loaded: {e}') from None
  try:
    train.validate_config(config)
  except ValueError as e:
    raise errors.ConfigError(f'{e} (config {path}; fix it there or with --config.FIELD=VALUE)') \
        from None
  return config


def parse_flags(argv):
  """absl's parsing, after writing this module's flags dashed (--allow_config_change works too);
  --config.FIELD overrides and absl's own flags stay as they are."""
  return app.parse_flags_with_usage(flag_style.respell(argv, OWN_FLAGS))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  runtime.tune_malloc()
  parallel.initialize_distributed(FLAGS['coordinator-address'].value,
                                  FLAGS['num-processes'].value, FLAGS['process-id'].value)
  path = config_flags.get_config_filename(FLAGS['config'])
  workdir = FLAGS.workdir or default_workdir(path)
  logging.info('JAX process %d/%d, local devices: %s', jax.process_index(), jax.process_count(),
               jax.local_devices())
  logging.info('Workdir: %s', workdir)
  try:
    train.train_and_evaluate(load_config(path), workdir,
                             allow_config_change=FLAGS['allow-config-change'].value)
  except errors.kinds(EXIT_CODES) as e:
    return errors.report('gan.main', e, EXIT_CODES)
  return 0


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
