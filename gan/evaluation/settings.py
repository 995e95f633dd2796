"""Evaluation settings: `validate(config)` checks config.eval before any work; what follows from it.

Every default lives in configs/default.py (old runs' configs are merged with it by
gan.rundir.load_config), so nothing here falls back on a value of its own.
"""
import math
import numbers

PREFIX = 'eval/'
FID_METRIC = 'eval/fid'                    # best_checkpoint/'s metric for unconditional runs,
INTRA_FID_METRIC = 'eval/intra_fid/mean'   # and for conditional ones (harder to game than FID).
DIVERSITY_METRIC = 'eval/diversity/pixel'  # Gates best_checkpoint/ (eval.min_best_diversity).
CONTROL_ANY_MODES = ('auto', 'catalogue', 'unspecified')

# (field, smallest allowed value) of the integer fields.
_AT_LEAST = (('num_samples', 2), ('batch_size', 1), ('kid_subsets', 1), ('kid_subset_size', 2),
             ('pr_k', 1), ('control_samples_per_value', 0), ('max_train_examples', 2),
             ('classifier_steps', 0), ('classifier_batch_size', 1), ('classifier_width', 1),
             ('classifier_feature_dim', 1), ('diversity_conditions', 0), ('diversity_samples', 2))


def metric_names(config) -> tuple:
  """The evaluators config.eval.metrics chooses, in the order given."""
  return tuple(config.eval.metrics)


def best_metric(config) -> str:
  """The 'eval/...' metric best_checkpoint/ minimises for this config."""
  name = str(config.eval.best_metric)
  if name == 'auto':
    return INTRA_FID_METRIC if config.model.conditional else FID_METRIC
  return name if name.startswith(PREFIX) else PREFIX + name


def control_any(config) -> str:
  """How the control set fills the attributes it does not request ('auto' is 'catalogue')."""
  mode = str(config.eval.control_any)
  return 'catalogue' if mode == 'auto' else mode


def auto_classifier_steps(num_train: int, batch_size: int) -> int:
  """About ten epochs, at least 200 and at most 1500 steps (1500 x 128 ~ 10 epochs of 20k)."""
  return int(min(1500, max(200, math.ceil(10 * num_train / batch_size))))


def _is_int(value) -> bool:
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def validate(config) -> None:
  """Raises a ValueError naming the config.eval field that is wrong and what it may be."""
  from gan.evaluation import evaluators  # The registry (heavier imports); only when checking.
  e = config.eval
  names = metric_names(config)
  if not names:
    raise ValueError('config.eval.metrics is empty; choose some of: '
                     f'{", ".join(evaluators.EVALUATORS.names())}.')
  for name in names:
    try:
      evaluators.EVALUATORS.get(name)
    except ValueError as error:
      raise ValueError(f'config.eval.metrics: {error}') from None
  for field, least in _AT_LEAST:
    value = e[field]
    if not _is_int(value) or value < least:
      raise ValueError(f'config.eval.{field} must be an integer >= {least}, got {value!r}.')
  if e.classifier_steps == 1:
    raise ValueError('config.eval.classifier_steps must be 0 (auto) or >= 2, got 1.')
  if 'precision_recall' in names and e.num_samples <= e.pr_k:
    raise ValueError(f'config.eval.num_samples={e.num_samples} must exceed pr_k={e.pr_k} '
                     '(k-NN precision/recall); use a few hundred or more.')
  if str(e.control_any) not in CONTROL_ANY_MODES:
    raise ValueError(f'config.eval.control_any must be one of {", ".join(CONTROL_ANY_MODES)}; '
                     f'got {e.control_any!r}.')
  for field in ('classifier_learning_rate', 'min_best_diversity'):
    value = e[field]
    positive = field == 'classifier_learning_rate'
    if not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0 or \
        (positive and value == 0):
      raise ValueError(f'config.eval.{field} must be a {"positive" if positive else "non-negative"}'
                       f' number, got {value!r}.')
  best = best_metric(config)
  if not any(evaluators.EVALUATORS.get(n).reports(best[len(PREFIX):]) for n in names):
    reported = sorted({s for n in names for s in evaluators.EVALUATORS.get(n).scalars})
    raise ValueError(f'config.eval.best_metric={e.best_metric!r} ranks by {best}, which none of '
                     f'config.eval.metrics ({", ".join(names)}) reports. Add its metric to '
                     f'config.eval.metrics or rank by one of: {", ".join(reported)} '
                     '(a name ending in / takes its last part, e.g. intra_fid/mean).')
