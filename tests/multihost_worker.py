"""Test worker: one process of a (possibly multi-process) training run; dumps its final state.

python tests/multihost_worker.py CONFIG.py WORKDIR DUMP.npz [COORDINATOR NUM_PROCESSES PROCESS_ID]
"""
import importlib.util
import sys

from gan import parallel


def main(argv):
  config_path, workdir, dump = argv[1:4]
  if len(argv) > 4:
    parallel.initialize_distributed(argv[4], int(argv[5]), int(argv[6]))
  import jax
  import numpy as np
  from gan import train
  spec = importlib.util.spec_from_file_location('cfg', config_path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  state = train.train_and_evaluate(module.get_config(), workdir)
  leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(state))
  np.savez(dump, **{jax.tree_util.keystr(path): np.asarray(v) for path, v in leaves})


if __name__ == '__main__':
  main(sys.argv)
