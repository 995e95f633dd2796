"""Thin orbax CheckpointManager wrapper: save, restore the newest intact checkpoint, fall back.

Layout under the workdir:
  checkpoints/<step>/state      the whole GANState (orbax StandardSave)
  best_checkpoint/<step>/state  the best checkpoint by FID (when evaluation is on)
  vocabulary.json               attribute names/values (written before the first checkpoint)
"""
import os
import time
from typing import Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

CHECKPOINT_DIR = 'checkpoints'
BEST_CHECKPOINT_DIR = 'best_checkpoint'  # The best-by-FID checkpoint, kept apart from the latest.


class CheckpointError(RuntimeError):
  pass


def checkpoint_dir(workdir: str, subdir: str = CHECKPOINT_DIR) -> str:
  return os.path.join(os.path.abspath(workdir) if '://' not in workdir else workdir, subdir)


class Checkpointer:
  """Periodic/final checkpoints of GANState with restore-or-init and damaged-checkpoint fallback."""

  def __init__(self, workdir: str, max_to_keep: int = 3, read_only: bool = False,
               subdir: str = CHECKPOINT_DIR):
    self.directory = checkpoint_dir(workdir, subdir)
    self.read_only = read_only
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                           read_only=read_only, enable_async_checkpointing=False)
    self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=('state',))

  def steps(self):
    return sorted(self.manager.all_steps())

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state) -> None:
    # The state is identical on every device and process (pmean'd): save it as host numpy arrays,
    # which orbax writes once from the primary process, whatever the topology.
    state = jax.tree_util.tree_map(np.asarray, jax.device_get(state))
    self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)), force=True)
    self.manager.wait_until_finished()

  def restore(self, template, step: Optional[int] = None):
    """Restores `step` (default: the newest checkpoint that reads back intact).

    Returns (state, step) or (None, None) when there is no checkpoint. A damaged checkpoint is
    skipped with a warning and left on disk untouched for inspection.
    """
    steps = self.steps()
    if step is not None:
      if step not in steps:
        raise CheckpointError(f'No checkpoint for step {step} in {self.directory}; '
                              f'available steps: {steps or "none"}.')
      return self._restore(template, step), step
    damaged = []
    for candidate in reversed(steps):
      try:
        state = self._restore(template, candidate)
      except Exception as e:  # orbax raises many types for damaged files; all mean "unreadable".
        damaged.append(candidate)
        logging.warning('Checkpoint at step %d in %s is damaged or incomplete (%s: %s); '
                        'falling back to an older one.', candidate, self.directory,
                        type(e).__name__, str(e)[:300])
        continue
      if not self.read_only:  # Readers (sampling tools) never move anything.
        for step_ in damaged:
          self._quarantine(step_)
      return state, candidate
    if steps:
      raise CheckpointError(f'Every checkpoint in {self.directory} ({steps}) is damaged; nothing '
                            'was deleted. Move the directory away to start fresh.')
    return None, None

  def _quarantine(self, step: int) -> None:
    """Moves a damaged step aside (never deletes it), so training can write that step again."""
    import tensorflow as tf
    source = os.path.join(self.directory, str(step))
    target_dir = self.directory + '_damaged'
    target = os.path.join(target_dir, f'{step}-{time.strftime("%Y%m%d-%H%M%S")}')
    tf.io.gfile.makedirs(target_dir)
    tf.io.gfile.rename(source, target)
    logging.warning('Moved the damaged checkpoint of step %d to %s (kept for inspection).', step,
                    target)
    self.manager.reload()

  def _restore(self, template, step):
    template = jax.tree_util.tree_map(np.asarray, jax.device_get(template))
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(template)))
    return restored['state']

  def close(self):
    self.manager.close()
