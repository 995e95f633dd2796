"""The best checkpoint by an evaluation metric, kept apart from the periodic ones.

Layout (names in gan/rundir.py): <workdir>/best_checkpoint/<step>/ (one orbax checkpoint) and
<workdir>/best_checkpoint.json ({'step', 'metric', 'value', 'metrics'}), written after the
checkpoint so it never names a step that is not on disk. Survives restarts: a resumed run only
replaces it with a better one. The sampling tools load it by default (gan/control/loading.py).
"""
from typing import Dict, Optional, Tuple

import jax
import numpy as np
from absl import logging

from gan import checkpoint as checkpoint_lib
from gan import rundir
from gan.evaluation import cache, settings


class BestCheckpoint:
  """Keeps the checkpoint whose `metric` (lower is better) is lowest so far.

  A checkpoint whose intra-condition diversity (settings.DIVERSITY_METRIC) is below
  `min_diversity` is never kept, so a collapsed generator cannot win.
  """

  def __init__(self, workdir: str, metric: str = settings.FID_METRIC, min_diversity: float = 0.0):
    self.workdir, self.metric, self.min_diversity = workdir, metric, float(min_diversity)
    self.json_path = rundir.join(workdir, rundir.BEST_CHECKPOINT_INFO)
    self._checkpointer = None  # Created on the first save: reading best() must not create dirs.
    # Read once, then kept in memory: every process of a multi-host run decides alike without
    # racing process 0's JSON writes.
    self._best = None
    self._loaded = False

  @classmethod
  def for_config(cls, workdir: str, config) -> 'BestCheckpoint':
    return cls(workdir, settings.best_metric(config), config.eval.min_best_diversity)

  @property
  def directory(self) -> str:
    return checkpoint_lib.checkpoint_dir(self.workdir, rundir.BEST_CHECKPOINT)

  def best(self) -> Optional[Tuple[int, Dict[str, float]]]:
    """(step, metrics) of the best checkpoint so far, or None."""
    if not self._loaded:
      info = cache.read_json(self.json_path)  # Missing or unreadable: no best known yet.
      if info and 'step' in info:
        self._best = (int(info['step']), dict(info.get('metrics', {})))
      self._loaded = True
    return None if self._best is None else (self._best[0], dict(self._best[1]))

  def update(self, step: int, state, metrics: Dict[str, float]) -> bool:
    """Saves `state` as the best checkpoint if metrics[metric] beats the best so far."""
    if self.metric not in metrics:
      raise ValueError(f'BestCheckpoint ranks by {self.metric!r}, which is not among the metrics '
                       f'given ({", ".join(sorted(metrics)) or "none"}). Pass Evaluator.evaluate '
                       'output.')
    value = float(metrics[self.metric])
    if not np.isfinite(value):
      logging.warning('Not keeping step %d as best: %s is %s.', step, self.metric, value)
      return False
    diversity = metrics.get(settings.DIVERSITY_METRIC)
    if diversity is not None and diversity < self.min_diversity:
      logging.warning('Not keeping step %d as best: %s = %.3f is below min_best_diversity = %.3g '
                      '(the generator draws near-copies within a condition).', step,
                      settings.DIVERSITY_METRIC, diversity, self.min_diversity)
      return False
    current = self.best()
    if current is not None and self.metric in current[1] and not value < current[1][self.metric]:
      return False
    if self._checkpointer is None:
      self._checkpointer = checkpoint_lib.Checkpointer(self.workdir, max_to_keep=1,
                                                       subdir=rundir.BEST_CHECKPOINT)
    if step not in self._checkpointer.steps():  # e.g. re-evaluated after a crash before the JSON
      self._checkpointer.save(step, state)
    kept = {k: float(v) for k, v in metrics.items()}
    if jax.process_index() == 0:
      rundir.write_json(self.json_path, {'step': int(step), 'metric': self.metric, 'value': value,
                                         'metrics': kept}, sort_keys=True)
    self._best = (int(step), kept)
    logging.info('New best checkpoint at step %d: %s = %.4g.', step, self.metric, value)
    return True

  def close(self):
    if self._checkpointer is not None:
      self._checkpointer.close()

