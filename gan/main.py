"""Entry point: python -m gan.main --config=configs/dcgan_products.py [--workdir=DIR].

Any config field can be overridden: --config.loss=hinge --config.batch_size=128.
"""
import os

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from gan import parallel, runtime, train

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Where checkpoints, summaries and samples go '
                    '(default: workdirs/<config name>). A gs:// path works on Cloud TPU VMs.')
flags.DEFINE_bool('allow_config_change', False, 'Resume checkpoints written under a config whose '
                  'model/data fields differ from this one (only safe if parameter shapes match).')
flags.DEFINE_string('coordinator_address', None, 'Multi-host: host:port of process 0 (not needed '
                    'on Cloud TPU VMs, where it is discovered). Env: JAX_COORDINATOR_ADDRESS.')
flags.DEFINE_integer('num_processes', None, 'Multi-host: number of processes. Env: JAX_NUM_PROCESSES.')
flags.DEFINE_integer('process_id', None, 'Multi-host: this process index. Env: JAX_PROCESS_ID.')
config_flags.DEFINE_config_file('config', None, 'Training configuration file.', lock_config=True)
flags.mark_flags_as_required(['config'])


def default_workdir(config_path: str) -> str:
  name = os.path.splitext(os.path.basename(config_path.split(':')[0]))[0]
  return os.path.join('workdirs', name)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  runtime.tune_malloc()
  parallel.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  workdir = FLAGS.workdir or default_workdir(config_flags.get_config_filename(FLAGS['config']))
  logging.info('JAX process %d/%d, local devices: %s', jax.process_index(), jax.process_count(),
               jax.local_devices())
  logging.info('Workdir: %s', workdir)
  train.train_and_evaluate(FLAGS.config, workdir, allow_config_change=FLAGS.allow_config_change)


if __name__ == '__main__':
  app.run(main)
