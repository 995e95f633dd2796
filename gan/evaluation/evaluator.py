"""Evaluation driver: generates a run's images once, runs the evaluators config.eval.metrics names.

`Evaluator(config, spec, workdir)` is built once per run: it checks config.eval, prepares the
cached `Reference` (gan/evaluation/reference.py: the attribute classifier that judges images and
gives the feature space, the real features, the diversity reference, Inception when configured)
and builds the chosen evaluators (gan/evaluation/evaluators.py, which also says how to read the
numbers). `evaluate(state)` then draws from the EMA generator (gan/sampler.py: standing
statistics re-estimated, eval mode) with latents fixed by `config.eval.seed`, so two evaluations
differ only through the generator. The distribution set, `num_samples` images conditioned on
attribute combinations drawn from the real set (so its label distribution is the data's), is
generated once per evaluation and shared; evaluators draw their own sets through it as well.
"""
import dataclasses
from typing import Dict, List, Optional

import numpy as np

from gan import samples
from gan.data import label_prior as label_prior_lib
from gan.data import pipeline
from gan.evaluation import evaluators as evaluators_lib
from gan.evaluation import settings
from gan.evaluation.reference import Reference
from gan.sampler import EmaSampler

PREFIX = settings.PREFIX


@dataclasses.dataclass
class EvalResult:
  """What one evaluation produced: flat scalars, confusion matrices, notes for the reader."""
  scalars: Dict[str, float]
  confusion: Dict[str, dict]
  notes: List[str]


class Evaluator:
  """The chosen metrics of a run's EMA generator.

  Construct once per run (it may train and cache the attribute classifier); call `evaluate(state)`
  as often as needed. Every process of a multi-host run computes the same numbers; only process 0
  writes cache files.
  """

  def __init__(self, config, spec: pipeline.DatasetSpec, workdir: str,
               prior: Optional[label_prior_lib.LabelPrior] = None,
               sampler: Optional[EmaSampler] = None):
    """prior: the training split's label distribution if the caller holds it (see Reference);
    sampler: the run's EmaSampler if the caller holds one (default: a new one)."""
    settings.validate(config)
    self.config, self.names = config, settings.metric_names(config)
    self.reference = Reference(config, spec, workdir, prior,
                               inception='inception_fid' in self.names).prepare()
    self.sampler = sampler or EmaSampler(config, spec.vocabulary.num_classes)
    self.num_samples, self.batch_size = int(config.eval.num_samples), int(config.eval.batch_size)
    self._last_confusion: Dict[str, dict] = {}
    # The distribution set: the real set's attribute combinations, each used as evenly as
    # possible. Evaluators that draw their own sets continue this stream (Setup.rng).
    rng = np.random.default_rng([self.reference.seed, 7])
    real_labels, n_real = self.reference.real_labels, len(self.reference.real_labels)
    idx = np.concatenate([rng.permutation(n_real) for _ in range(-(-self.num_samples // n_real))])
    self.labels = real_labels[idx[:self.num_samples]]
    self.latents = rng.standard_normal(
        (self.num_samples, self.sampler.latent_dim)).astype(np.float32)
    setup = evaluators_lib.Setup(self.reference, config, rng, self.sampler.latent_dim)
    self.evaluators = {name: evaluators_lib.EVALUATORS.get(name)(setup) for name in self.names}

  @property
  def notes(self) -> List[str]:
    return list(self.reference.notes)

  @property
  def floor(self) -> Dict[str, float]:
    """The real-vs-real floor of the chosen metrics (a training subset against the real set)."""
    return {k: v for e in self.evaluators.values() for k, v in getattr(e, 'floor', {}).items()}

  def evaluate(self, state) -> Dict[str, float]:
    """Flat scalar metrics ('eval/...') of the state's EMA generator; see `evaluate_full`."""
    return self.evaluate_full(state).scalars

  def confusion_matrices(self) -> Dict[str, dict]:
    """The last evaluation's confusion matrices (JSON-ready; rows requested, columns predicted)."""
    return self._last_confusion

  def evaluate_full(self, state) -> EvalResult:
    """Every chosen metric of the state's EMA generator, plus confusion matrices and notes."""
    state = self.sampler.with_standing_stats(state)

    def generate(z, labels) -> np.ndarray:  # One compiled shape for every batch: padded.
      return samples.to_uint8(self.sampler.generate_batched(state, z, labels, self.batch_size,
                                                            pad=True))

    generated = evaluators_lib.Generated(self.reference, self.latents, self.labels, generate)
    scalars, confusion = {}, {}
    for evaluator in self.evaluators.values():
      scores = evaluator(generated)
      scalars.update(scores.scalars)
      confusion.update(scores.confusion)
    self._last_confusion = confusion
    return EvalResult({PREFIX + k: float(v) for k, v in scalars.items()}, confusion, self.notes)

  def settings(self) -> dict:
    """What the numbers depend on besides the generator (for reports and comparisons)."""
    e, ref = self.config.eval, self.reference
    return {'metrics': list(self.names), 'num_samples': self.num_samples,
            'num_real': ref.num_real, 'num_train_reference': len(ref.train_features),
            'seed': ref.seed, 'control_samples_per_value': int(e.control_samples_per_value),
            'control_any': settings.control_any(self.config), 'kid_subsets': int(e.kid_subsets),
            'kid_subset_size': int(e.kid_subset_size), 'pr_k': int(e.pr_k),
            'diversity_conditions': len(ref.diversity_labels),
            'diversity_samples': int(e.diversity_samples),
            'feature_space': f'attribute classifier ({ref.classifier.feature_dim}-d)',
            'classifier': ref.classifier_key(), 'inception': ref.inception is not None}
