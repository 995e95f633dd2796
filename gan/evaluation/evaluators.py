"""Evaluation metrics as registered evaluators: each turns generated images into its eval/* scalars.

An evaluator is built once per run from a `Setup` (the prepared `Reference`, the config, the
random stream of its own inputs) and called once per evaluation with the `Generated` images of
the EMA generator; it returns `Scores` (scalars without the 'eval/' prefix, and tables).
config.eval.metrics names the ones that run.

Reading the numbers:

  fid, kid, kid_stderr        lower is better; compare with fid_floor / kid_floor (a training subset
                              against the same real set): a generator cannot beat that floor in
                              practice. Compare FIDs only at equal num_samples.
  precision, recall           fraction of generated images inside the real manifold (fidelity) and
                              of real images inside the generated one (coverage); *_floor likewise.
  memorisation_*_median       feature distance to the nearest training image, for generated images
                              and for held-out real ones; memorisation_ratio = gen / real. Well
                              below 1: generated images sit closer to training images than unseen
                              real ones do, i.e. the generator may be copying.
  inception_fid               FID in Inception-V3 features (config.eval.inception_weights).
  intra_fid/<attribute>       FID per value of the attribute (generated with v against real with v),
                              averaged over values; intra_fid/mean averages attributes. Pooled FID
                              hides a generator that draws one image per condition; this shows more.
  diversity/pixel, /feature   intra-condition diversity: for `diversity_conditions` full conditions
                              (every attribute set), the mean pairwise distance of
                              `diversity_samples` generated images (RMS on [0, 1] pixels; classifier
                              features) over the same for training images of that condition,
                              averaged over conditions. 1 = as varied as the catalogue; near 0 =
                              the latent is ignored (one image per condition).
  control_acc/<attribute>     that attribute alone requested (the others "any": drawn from the
                              catalogue given it, config.eval.control_any); fraction the classifier
                              agrees with (mean: over attributes); control_acc_unspecified/: the
                              others as the model's "unspecified" label (runs trained with attribute
                              dropout). control_acc_joint/<attribute>: every attribute requested at
                              once (the distribution set); /all: every attribute right at once.
                              Bounded by classifier_acc/<attribute>, the judge's held-out accuracy.
"""
import dataclasses
import functools
from typing import Callable, Dict, Tuple

import numpy as np

from gan.evaluation import inception as inception_lib
from gan.evaluation import metrics, settings
from gan.evaluation.reference import Reference
from gan.registry import Registry

EVALUATORS = Registry('evaluation metric')


@dataclasses.dataclass
class Setup:
  """What every evaluator is built from."""
  reference: Reference
  config: object
  rng: np.random.Generator    # The stream that drew the distribution set, continued.
  latent_dim: int             # The generator's (model interface), for evaluators' own latents.


class Generated:
  """One evaluation's images of the EMA generator, made on first use and shared by evaluators."""

  def __init__(self, reference: Reference, latents, labels,
               generate: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    """generate(z, labels) -> uint8 images of the state under evaluation."""
    self.reference, self.latents, self.labels, self.generate = reference, latents, labels, generate

  @functools.cached_property
  def images(self) -> np.ndarray:
    """The distribution set: uint8 [num_samples, R, R, 3]."""
    return self.generate(self.latents, self.labels)

  @functools.cached_property
  def _judged(self) -> Tuple[np.ndarray, np.ndarray]:
    return self.reference.features_and_predictions(self.images)

  @property
  def features(self) -> np.ndarray:
    return self._judged[0]

  @property
  def predictions(self) -> np.ndarray:
    return self._judged[1]


@dataclasses.dataclass
class Scores:
  scalars: Dict[str, float]
  confusion: Dict[str, dict] = dataclasses.field(default_factory=dict)


class BaseEvaluator:
  """One metric family. Subclasses list the scalars they report (a name ending in '/' stands
  for each attribute, and mean) and implement __call__."""
  scalars: Tuple[str, ...] = ()

  def __init__(self, setup: Setup):
    self.ref, self.eval_config = setup.reference, setup.config.eval

  @classmethod
  def reports(cls, name: str) -> bool:
    """Whether `name` (without 'eval/') is one of this evaluator's scalars."""
    return any(name.startswith(s) and len(name) > len(s) if s.endswith('/') else name == s
               for s in cls.scalars)

  def __call__(self, generated: Generated) -> Scores:
    raise NotImplementedError


@EVALUATORS.register('fid')
class Fid(BaseEvaluator):
  """FID and KID (unbiased, with standard error) against the real set, and their floor."""
  scalars = ('fid', 'kid', 'kid_stderr', 'fid_floor', 'kid_floor', 'kid_floor_stderr')

  def __init__(self, setup):
    super().__init__(setup)
    floor = self._scores(self.ref.floor_features)
    self.floor = {'fid_floor': floor['fid'], 'kid_floor': floor['kid'],
                  'kid_floor_stderr': floor['kid_stderr']}

  def _scores(self, feats) -> Dict[str, float]:
    e = self.eval_config
    kid, kid_err = metrics.kid(feats, self.ref.real_features, e.kid_subsets, e.kid_subset_size,
                               rng=self.ref.seed)
    return {'fid': metrics.frechet_distance(*metrics.feature_statistics(feats),
                                            *self.ref.real_stats),
            'kid': kid, 'kid_stderr': kid_err}

  def __call__(self, generated):
    return Scores({**self.floor, **self._scores(generated.features)})


@EVALUATORS.register('precision_recall')
class PrecisionRecall(BaseEvaluator):
  """k-NN precision (fidelity) and recall (coverage), Kynkaanniemi et al. 2019, and their floor."""
  scalars = ('precision', 'recall', 'precision_floor', 'recall_floor')

  def __init__(self, setup):
    super().__init__(setup)
    precision, recall = metrics.precision_recall(self.ref.real_features, self.ref.floor_features,
                                                 self.eval_config.pr_k)
    self.floor = {'precision_floor': precision, 'recall_floor': recall}

  def __call__(self, generated):
    real, feats = self.ref.real_features, generated.features
    n = min(len(feats), len(real))  # Equal sizes keep precision and recall comparable.
    precision, recall = metrics.precision_recall(real[:n], feats[:n], self.eval_config.pr_k)
    return Scores({**self.floor, 'precision': precision, 'recall': recall})


@EVALUATORS.register('memorisation')
class Memorisation(BaseEvaluator):
  """Nearest-training-image distance of generated images against that of held-out real ones."""
  scalars = ('memorisation_gen_median', 'memorisation_real_median', 'memorisation_ratio')

  def __init__(self, setup):
    super().__init__(setup)
    self.real_median = self._median(self.ref.real_features)

  def _median(self, feats) -> float:
    return float(np.median(metrics.nearest_neighbour_distances(feats, self.ref.train_features)))

  def __call__(self, generated):
    gen = self._median(generated.features)
    return Scores({'memorisation_gen_median': gen, 'memorisation_real_median': self.real_median,
                   'memorisation_ratio': gen / max(self.real_median, 1e-12)})


@EVALUATORS.register('inception_fid')
class InceptionFid(BaseEvaluator):
  """The literature's FID, in Inception-V3 features (when the reference could load the weights)."""
  scalars = ('inception_fid',)

  def __call__(self, generated):
    if self.ref.inception is None:
      return Scores({})
    module, variables, real_stats = self.ref.inception
    feats = inception_lib.inception_features(module, variables, generated.images)
    return Scores({'inception_fid': metrics.frechet_distance(*metrics.feature_statistics(feats),
                                                             *real_stats)})


@EVALUATORS.register('intra_fid')
class IntraFid(BaseEvaluator):
  """FID per value of each judged attribute, averaged (conditional runs)."""
  scalars = ('intra_fid/',)

  def __call__(self, generated):
    ref, out = self.ref, {}
    if not ref.conditional:
      return Scores(out)
    for a, name in zip(ref.judged, ref.judged_names):
      out[f'intra_fid/{name}'], _ = metrics.intra_fid(generated.features, generated.labels[:, a],
                                                      ref.real_features, ref.real_labels[:, a])
    out['intra_fid/mean'] = float(np.mean(list(out.values())))
    return Scores(out)


@EVALUATORS.register('diversity')
class Diversity(BaseEvaluator):
  """Intra-condition diversity: spread of images under one full condition over the catalogue's."""
  scalars = ('diversity/',)

  def __init__(self, setup):
    super().__init__(setup)
    ref, per_condition = self.ref, int(self.eval_config.diversity_samples)
    self.inputs = None  # (labels, latents): diversity_samples latents under each condition.
    if ref.conditional and len(ref.diversity_labels):
      labels = np.repeat(ref.diversity_labels, per_condition, axis=0)
      z = np.random.default_rng([ref.seed, 13]).standard_normal(
          (len(labels), setup.latent_dim)).astype(np.float32)
      self.inputs = (labels, z)

  def __call__(self, generated):
    if self.inputs is None:
      return Scores({})
    ref, (labels, z) = self.ref, self.inputs
    k, m = len(ref.diversity_labels), int(self.eval_config.diversity_samples)
    images = generated.generate(z, labels)
    feats = ref.classifier.features(images, ref.batch_size)
    per_condition = lambda x: [x[i * m:(i + 1) * m] for i in range(k)]
    real = ref.diversity_real
    return Scores({'diversity/pixel': metrics.diversity_ratio(per_condition(images), real['pixel'],
                                                              metrics.mean_pairwise_rms),
                   'diversity/feature': metrics.diversity_ratio(per_condition(feats),
                                                                real['feature'])})


@EVALUATORS.register('control')
class Control(BaseEvaluator):
  """How often the judge reads the requested attribute values: one attribute requested at a time
  (the control set) and all at once (the distribution set); with the judge's own accuracy."""
  scalars = ('control_acc/', 'control_acc_unspecified/', 'control_acc_joint/', 'classifier_acc/')

  def __init__(self, setup):
    super().__init__(setup)
    ref, per_value = self.ref, int(self.eval_config.control_samples_per_value)
    # The control set: each value of each judged attribute alone, the others "any" (control_any);
    # groups are (key suffix: '' for control_any, '_unspecified' for the extra set; attribute
    # name, attribute index, labels, latents). Drawn from setup.rng after the distribution set.
    self.groups = []
    if not (ref.conditional and per_value):
      return
    mode = settings.control_any(setup.config)
    modes = [mode]
    if mode != 'unspecified' and float(setup.config.attribute_dropout) > 0:
      modes.append('unspecified')
    for m in modes:
      suffix = '' if m == mode else f'_{m}'
      for a, name in zip(ref.judged, ref.judged_names):
        n = ref.vocab.num_classes[a]
        labels = np.tile(ref.vocab.unspecified(), (n * per_value, 1))
        labels[:, a] = np.repeat(np.arange(n), per_value)
        if m == 'catalogue':
          labels = ref.prior.fill(labels, setup.rng)
        z = setup.rng.standard_normal((len(labels), setup.latent_dim))
        self.groups.append((suffix, name, a, labels, z.astype(np.float32)))

  def __call__(self, generated):
    ref = self.ref
    out = {f'classifier_acc/{n}': v for n, v in ref.classifier_accuracy.items()}
    confusion = {}
    if not ref.conditional:
      return Scores(out, confusion)

    def score(table, key, attribute, requested, predicted):
      j = ref.judged.index(attribute)
      acc, matrix = metrics.control_accuracy(requested, predicted, ref.judged_classes[j])
      name = ref.vocab.names[attribute]
      # Rows: the requested value; columns: the predicted one.
      confusion[f'{table}/{name}'] = {'values': list(ref.vocab.values(name)), 'accuracy': acc,
                                      'matrix': np.asarray(matrix).tolist()}
      out[f'{key}/{name}'] = acc

    labels, preds = generated.labels, generated.predictions
    for j, a in enumerate(ref.judged):
      score('joint', 'control_acc_joint', a, labels[:, a], preds[:, j])
    judged = np.asarray(ref.judged)
    out['control_acc_joint/all'] = float(np.mean(np.all(preds == labels[:, judged], axis=1)))
    for suffix, name, a, group_labels, z in self.groups:
      predicted = ref.classifier.predict(generated.generate(z, group_labels), ref.batch_size)
      score(f'single{suffix}', f'control_acc{suffix}', a, group_labels[:, a],
            predicted[:, ref.judged.index(a)])
    single = [out[f'control_acc/{name}'] for suffix, name, *_ in self.groups if not suffix]
    if single:
      out['control_acc/mean'] = float(np.mean(single))
    return Scores(out, confusion)
