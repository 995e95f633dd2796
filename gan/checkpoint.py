"""Thin orbax CheckpointManager wrapper: save, restore the newest intact checkpoint, fall back.

Layout under the workdir (names in gan/rundir.py):
  checkpoints/<step>/state      the whole GANState (orbax StandardSave)
  best_checkpoint/<step>/state  the best checkpoint (when evaluation is on)
  checkpoints_damaged/<step>-<time>  damaged checkpoints moved aside by training (never deleted)

One restore path for everyone: training restores with moving damaged steps aside; the sampling
tools open the same Checkpointer with read_only=True, which never changes anything on disk.

A read that fails with a storage hiccup (a gs:// timeout) is retried and, if it keeps failing,
stops with CheckpointUnavailableError: it is never taken for damage, and nothing is moved.
"""
import os
import sys
import time
from typing import Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from gan import rundir


class CheckpointError(RuntimeError):
  """Checkpoints that cannot be used: the one asked for is missing or damaged, or all are."""


class CheckpointUnavailableError(RuntimeError):
  """Reading a checkpoint kept failing with a storage error that says "try again"; nothing moved."""


class _Damaged(Exception):
  """A checkpoint whose files are bad (not a transient read error)."""


READ_ATTEMPTS = 3
RETRY_SECONDS = 2.0  # Pause before the second attempt; doubled before each further one.
# Error types and message fragments of a storage hiccup rather than bad files (Python, TF/gfile
# and tensorstore status codes, HTTP).
_TRANSIENT_TYPES = (ConnectionError, TimeoutError)
_TRANSIENT_TF_ERRORS = ('UnavailableError', 'DeadlineExceededError', 'ResourceExhaustedError')
_TRANSIENT_MARKERS = ('unavailable', 'deadline_exceeded', 'deadline exceeded', 'resource_exhausted',
                      'timed out', 'connection reset', 'connection aborted', 'connection refused',
                      'temporary failure', 'too many requests', 'broken pipe')


def is_transient(error: BaseException) -> bool:
  """Whether an error (or one it was raised from) looks like a storage hiccup worth retrying."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, _TRANSIENT_TYPES) or type(error).__name__ in _TRANSIENT_TF_ERRORS:
      return True
    if any(marker in str(error).lower() for marker in _TRANSIENT_MARKERS):
      return True
    error = error.__cause__ or error.__context__
  return False


def _is_closed_loop_echo(kind, value, tb) -> bool:
  """A tensorstore read finishing after orbax gave up on a damaged checkpoint: its callback finds
  orbax's event loop closed. Harmless (the failure was already handled), but printed as a
  traceback from a background thread; it is the only error this filter drops."""
  if not (kind is RuntimeError and str(value) == 'Event loop is closed'):
    return False
  while tb is not None and tb.tb_next is not None:
    tb = tb.tb_next
  return tb is not None and tb.tb_frame.f_code.co_name == '_check_closed'


def _install_closed_loop_filter():
  """Once per process, on both paths such a callback error is reported by."""
  previous_excepthook, previous_unraisablehook = sys.excepthook, sys.unraisablehook
  if getattr(previous_excepthook, 'drops_closed_loop_echo', False):
    return

  def excepthook(kind, value, tb):
    if not _is_closed_loop_echo(kind, value, tb):
      previous_excepthook(kind, value, tb)

  def unraisablehook(report):
    if not _is_closed_loop_echo(report.exc_type, report.exc_value, report.exc_traceback):
      previous_unraisablehook(report)
  excepthook.drops_closed_loop_echo = True
  sys.excepthook, sys.unraisablehook = excepthook, unraisablehook


def checkpoint_dir(workdir: str, subdir: str = rundir.CHECKPOINTS) -> str:
  return rundir.join(workdir, subdir)


class Checkpointer:
  """Periodic/final checkpoints of GANState with restore-or-init and damaged-checkpoint fallback."""

  def __init__(self, workdir: str, max_to_keep: int = 3, read_only: bool = False,
               subdir: str = rundir.CHECKPOINTS):
    self.directory = checkpoint_dir(workdir, subdir)
    self.read_only = read_only
    self.remote = rundir.is_remote(self.directory)
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

    Returns (state, step), or (None, None) when there is no checkpoint. A damaged `step` raises
    CheckpointError. Without a step, damaged checkpoints are skipped with a warning and, once an
    intact one is found, moved to <directory>_damaged/ (unless read_only; never deleted) so
    training can write those steps again. A read that keeps failing with a transient storage
    error raises CheckpointUnavailableError and moves nothing.
    """
    steps = self.steps()
    if step is not None:
      if step not in steps:
        raise CheckpointError(f'No checkpoint for step {step} in {self.directory}; '
                              f'available steps: {steps or "none"}.')
      try:
        return self._read(template, step), step
      except _Damaged as e:
        others = [s for s in steps if s != step]
        raise CheckpointError(f'The checkpoint of step {step} in {self.directory} is damaged or '
                              f'incomplete ({e}). Choose another step (available: '
                              f'{others or "none"}) or the latest intact one.') from None
    damaged = []
    for candidate in reversed(steps):
      try:
        state = self._read(template, candidate)
      except _Damaged as e:
        damaged.append(candidate)
        logging.warning('Checkpoint at step %d in %s is damaged or incomplete (%s); '
                        'falling back to an older one.', candidate, self.directory, e)
        continue
      if not self.read_only:  # Readers (sampling tools) never move anything.
        for step_ in damaged:
          self._quarantine(step_)
      return state, candidate
    if steps:
      raise CheckpointError(f'Every checkpoint in {self.directory} (steps {steps}) is damaged or '
                            'incomplete; nothing was moved or deleted. Move that folder away to '
                            'start afresh, or restore it from a backup.')
    return None, None

  def _read(self, template, step: int):
    """Restores one step, retrying storage hiccups; raises _Damaged when the files are bad.

    Locally an error that is not a hiccup is damage at once; on remote storage every error is
    retried, and only one that comes back on every attempt counts as damage.
    """
    _install_closed_loop_filter()  # Before: sibling reads of a failed one report as it fails.
    for attempt in range(READ_ATTEMPTS):
      try:
        return self._restore(template, step)
      except Exception as e:  # orbax and tensorstore raise many types; sorted out here.
        error, transient = e, is_transient(e)
        if not (transient or self.remote) or attempt + 1 == READ_ATTEMPTS:
          break
        pause = RETRY_SECONDS * 2 ** attempt
        logging.warning('Reading the checkpoint of step %d in %s failed (%s: %s); retrying in '
                        '%.0f s.', step, self.directory, type(e).__name__, str(e)[:300], pause)
        time.sleep(pause)
    summary = f'{type(error).__name__}: {str(error)[:300]}'
    if transient:
      raise CheckpointUnavailableError(
          f'Could not read the checkpoint of step {step} in {self.directory} after {attempt + 1} '
          f'attempt(s): {summary}. This is a storage or network error, not damage: nothing was '
          'moved. Check that the storage is reachable and rerun the same command.') from error
    raise _Damaged(summary) from error

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
