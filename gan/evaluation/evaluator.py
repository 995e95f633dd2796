"""Quality and control evaluation of the EMA generator, for the training loop and `gan.evaluate`.

`Evaluator(config, spec, workdir)` is built once per run. It prepares, and caches under
`<workdir>/eval_classifier/` (or `config.eval.classifier_dir`), everything that does not depend
on the generator:

- the domain feature extractor: an attribute classifier (`gan.evaluation.classifier`) trained on
  the run's training split, one head per attribute, with its accuracy on the held-out split. The
  cache file is named after the dataset (TFDS full name) and resolution, and a key file next to it
  records what it was trained on, so another dataset, attribute set or classifier setting retrains;
- classifier features of a fixed random subset of the held-out split (the "real" set) and of the
  training split (the memorisation reference), and the real-vs-real floor: FID / KID / precision /
  recall of a training subset against the real set. Generated numbers are only as good as this
  floor allows.

`evaluate(state)` then draws from the EMA generator (state.ema_params, BatchNorm statistics
re-estimated here as standing statistics, eval mode) with latents fixed by `config.eval.seed`, so
two evaluations differ only through the generator:

- the distribution set: `num_samples` images conditioned on attribute combinations drawn from the
  real set (so its label distribution is the data's) -> FID, KID (unbiased, with standard error),
  precision / recall (k-NN, Kynkaanniemi et al. 2019), memorisation (nearest training neighbour
  distance, generated vs real), joint control accuracy (every attribute requested at once);
- the control set: for each attribute and each of its values, `control_samples_per_value` images
  with only that attribute requested -> control accuracy per attribute. The other attributes are
  left to "any" as the sampling tools do by default (`config.eval.control_any`, 'auto' =
  'catalogue': drawn from the training split's label distribution given the requested value, see
  gan/data/label_prior.py); runs trained with attribute dropout also get the same set with the
  model's own "unspecified" label (control_acc_unspecified/<attribute>).

All distribution metrics live in the classifier's feature space (`feature_dim`-d). Inception-V3 FID
(`eval/inception_fid`) is added when `config.eval.inception_weights` names a readable local file;
without it a note says so and everything else runs.

Reading the numbers (keys of `evaluate`, all prefixed 'eval/'):
  fid, kid, kid_stderr        lower is better; compare with fid_floor / kid_floor (a training subset
                              against the same real set): a generator cannot beat that floor in
                              practice. Compare FIDs only at equal num_samples.
  precision, recall           fraction of generated images inside the real manifold (fidelity) and
                              of real images inside the generated one (coverage); *_floor likewise.
  memorisation_*_median       feature distance to the nearest training image, for generated images
                              and for held-out real ones; memorisation_ratio = gen / real. Well
                              below 1: generated images sit closer to training images than unseen
                              real ones do, i.e. the generator may be copying.
  intra_fid/<attribute>       FID per value of the attribute (generated with v against real with v),
                              averaged over values; intra_fid/mean averages attributes. Pooled FID
                              hides a generator that draws one image per condition; this shows more.
  diversity/pixel, /feature   intra-condition diversity: for `diversity_conditions` full conditions
                              (every attribute set), the mean pairwise distance of
                              `diversity_samples` generated images (RMS on [0, 1] pixels; classifier
                              features) over the same for training images of that condition,
                              averaged over conditions. 1 = as varied as the catalogue; near 0 =
                              the latent is ignored (one image per condition).
  control_acc/<attribute>     that attribute alone requested (others "any", see the control set);
                              fraction the classifier agrees with (mean: over attributes);
                              control_acc_unspecified/<attribute>: the others as the model's
                              "unspecified" label. control_acc_joint/<attribute>: every
                              attribute requested at once (combinations from the data); /all: every
                              attribute right at once. Bounded by classifier_acc/<attribute>, the
                              classifier's own held-out accuracy.

`BestCheckpoint(workdir, metric)` keeps the best checkpoint by `best_metric(config)` (intra-FID for
conditional runs, FID otherwise) in `best_checkpoint/` (apart from the latest ones) with
`best_checkpoint.json` (its step and metrics) beside it; a checkpoint whose intra-condition
diversity is below `min_best_diversity` is never kept as best, so collapse cannot win.
"""
import dataclasses
import functools
import hashlib
import io
import json
import math
import os
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import jax
import numpy as np
import tensorflow as tf
from absl import logging

from gan import checkpoint as checkpoint_lib
from gan import samples
from gan.data import label_prior as label_prior_lib
from gan.data import pipeline
from gan.evaluation import classifier as classifier_lib
from gan.evaluation import inception as inception_lib
from gan.evaluation import metrics
from gan.sampler import EmaSampler

PREFIX = 'eval/'
BEST_METRIC = 'eval/fid'  # Lower is better; unconditional runs (see best_metric()).
INTRA_FID_METRIC = 'eval/intra_fid/mean'  # Conditional runs' default best metric.
DIVERSITY_METRIC = 'eval/diversity/pixel'
BEST_JSON = 'best_checkpoint.json'
CLASSIFIER_DIR = 'eval_classifier'
# Held-out accuracy below which the classifier's control verdicts come with a warning.
WEAK_CLASSIFIER = 0.8
CONTROL_ANY_MODES = ('auto', 'catalogue', 'unspecified')

# config.eval fields this module reads (config.eval.get(name, default)); see configs/default.py.
DEFAULTS = {
    'num_samples': 2000,             # Generated images for FID/KID/PR; also caps the real set.
    'batch_size': 250,               # Generation / feature batch.
    'seed': 0,                       # Latents, labels and real subsets of every evaluation.
    'control_samples_per_value': 50,
    'control_any': 'auto',           # Control set's other attributes: 'auto' | 'catalogue' |
                                     # 'unspecified' (as gan.sample --any; auto = catalogue).
    'kid_subsets': 100,
    'kid_subset_size': 1000,
    'pr_k': 3,
    'max_train_examples': 20000,     # Training images for the classifier, memorisation, floor.
    'classifier_dir': None,          # Default: <workdir>/eval_classifier.
    'classifier_steps': 0,           # 0: auto (about 10 epochs, clipped to [200, 1500]).
    'classifier_batch_size': 128,
    'classifier_width': 32,
    'classifier_feature_dim': 256,
    'classifier_learning_rate': 2e-3,
    'classifier_flip': True,         # Horizontal flips in classifier training (turn off if an
                                     # attribute depends on left/right orientation).
    'inception_weights': None,
    'diversity_conditions': 8,       # Full conditions (most frequent in the training split) ...
    'diversity_samples': 24,         # ... and images of each, for intra-condition diversity.
    'best_metric': 'auto',           # What best_checkpoint/ minimises; auto: intra_fid/mean when
                                     # conditional (per-value FID, harder to game than pooled FID), else fid.
    'min_best_diversity': 0.3,       # A checkpoint whose diversity/pixel is lower is never "best".
}


def eval_setting(config, name: str):
  """config.eval.<name>, or this module's default when the config does not define it."""
  value = config.eval.get(name, None) if 'eval' in config else None
  return DEFAULTS[name] if value is None else value


def best_metric(config) -> str:
  """The 'eval/...' metric best_checkpoint/ minimises for this config."""
  name = str(eval_setting(config, 'best_metric'))
  if name == 'auto':
    return INTRA_FID_METRIC if config.model.conditional else BEST_METRIC
  return name if name.startswith(PREFIX) else PREFIX + name


def auto_classifier_steps(num_train: int, batch_size: int) -> int:
  """About ten epochs, at least 200 and at most 1500 steps (1500 x 128 ~ 10 epochs of 20k)."""
  return int(min(1500, max(200, math.ceil(10 * num_train / batch_size))))


# ----------------------------------------------------------------------------- files


def _is_remote(path: str) -> bool:
  return '://' in path


def _json_write(path: str, payload) -> None:
  """Atomic JSON write through gfile (local paths and gs:// alike)."""
  tf.io.gfile.makedirs(os.path.dirname(path))
  tmp = path + '.tmp'
  with tf.io.gfile.GFile(tmp, 'w') as f:
    f.write(json.dumps(payload, indent=2, sort_keys=True) + '\n')
  tf.io.gfile.rename(tmp, path, overwrite=True)


def _json_read(path: str):
  if not tf.io.gfile.exists(path):
    return None
  try:
    with tf.io.gfile.GFile(path) as f:
      return json.loads(f.read())
  except (ValueError, tf.errors.OpError) as e:
    logging.warning('Ignoring unreadable %s (%s).', path, e)
    return None


def _load_classifier(path: str) -> classifier_lib.ClassifierBundle:
  if not _is_remote(path):
    return classifier_lib.load_classifier(path)
  with tempfile.TemporaryDirectory() as tmp:  # load_classifier reads local files only.
    local = os.path.join(tmp, os.path.basename(path))
    tf.io.gfile.copy(path, local)
    return classifier_lib.load_classifier(local)


def _save_classifier(bundle, path: str) -> None:
  if not _is_remote(path):
    classifier_lib.save_classifier(bundle, path)
    return
  with tempfile.TemporaryDirectory() as tmp:
    local = os.path.join(tmp, os.path.basename(path))
    classifier_lib.save_classifier(bundle, local)
    tf.io.gfile.makedirs(os.path.dirname(path))
    for src, dst in ((local, path), (classifier_lib.metadata_path(local),
                                     classifier_lib.metadata_path(path))):
      tf.io.gfile.copy(src, dst, overwrite=True)


def _npz_write(path: str, arrays: Dict[str, np.ndarray]) -> None:
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  tmp = path + '.tmp'
  with tf.io.gfile.GFile(tmp, 'wb') as f:
    f.write(buffer.getvalue())
  tf.io.gfile.rename(tmp, path, overwrite=True)


def _npz_read(path: str) -> Optional[Dict[str, np.ndarray]]:
  if not tf.io.gfile.exists(path):
    return None
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      with np.load(io.BytesIO(f.read()), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
  except (ValueError, OSError, tf.errors.OpError) as e:
    logging.warning('Ignoring unreadable feature cache %s (%s); recomputing.', path, e)
    return None


def _fingerprint(key: dict) -> str:
  return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- real data


def _random_subset(spec, split: str, resolution: int, count: int, seed: int):
  """`count` examples of `split` drawn uniformly without replacement (fixed by `seed`), in order.

  Uniform rather than the first `count`: a catalogue's split may be sorted by attribute.
  Returns (uint8 images [n, R, R, 3], int32 labels [n, A]).
  """
  total = spec.num_examples(split)
  ds = pipeline.decoded_split(spec, split, resolution, cache=False)
  if count < total:
    keep = np.zeros(total, bool)
    keep[np.random.default_rng([seed, total]).choice(total, count, replace=False)] = True
    keep = tf.constant(keep)

    def kept(index, example):
      del example
      return tf.gather(keep, index)

    def drop_index(index, example):
      del index
      return example

    ds = ds.enumerate().filter(kept).map(drop_index)
  images, labels = [], []
  for batch in ds.batch(512).prefetch(2).as_numpy_iterator():
    images.append(batch['image'])
    labels.append(batch['labels'])
  if not images:
    raise ValueError(f'The {split!r} split of {spec.builder.info.full_name} is empty.')
  return np.concatenate(images), np.concatenate(labels).astype(np.int32)


def _split_size(spec, split: str, what: str) -> int:
  splits = spec.builder.info.splits
  if splits and split not in splits:
    raise ValueError(f'Evaluation needs a {what} split {split!r}, but '
                     f'{spec.builder.info.full_name} has splits {", ".join(splits) or "(none)"}. '
                     f'Set --config.data.{what}_split, or build the catalogue with a held-out '
                     'part (--holdout 0.1).')
  return spec.num_examples(split)


_DIVERSITY_KEYS = ('diversity_labels', 'diversity_real_pixel', 'diversity_real_feature')


def diversity_reference(images, labels, feats, num_conditions: int, per_condition: int,
                        seed: int) -> Dict[str, np.ndarray]:
  """The conditions intra-condition diversity is measured on, and their real spreads.

  The `num_conditions` most frequent full label combinations (ties in a fixed random order) with
  at least two images; for each, the mean pairwise RMS pixel distance and feature distance of up
  to `per_condition` of its images. Returns arrays named as in _DIVERSITY_KEYS.
  """
  empty = {'diversity_labels': np.zeros((0, labels.shape[1]), np.int32),
           'diversity_real_pixel': np.zeros(0), 'diversity_real_feature': np.zeros(0)}
  if not num_conditions or labels.shape[1] == 0:
    return empty
  combos, inverse, counts = np.unique(labels, axis=0, return_inverse=True, return_counts=True)
  inverse = inverse.reshape(-1)
  rng = np.random.default_rng([seed, 11])
  tiebreak = rng.permutation(len(combos))
  order = np.lexsort((tiebreak, -np.minimum(counts, per_condition)))
  chosen = [c for c in order if counts[c] >= 2][:num_conditions]
  if not chosen:
    return empty
  pixel, feature = [], []
  for c in chosen:
    members = rng.permutation(np.flatnonzero(inverse == c))[:per_condition]
    pixel.append(metrics.mean_pairwise_rms(images[members]))
    feature.append(metrics.mean_pairwise_distance(feats[members]))
  return {'diversity_labels': combos[chosen].astype(np.int32),
          'diversity_real_pixel': np.asarray(pixel), 'diversity_real_feature': np.asarray(feature)}


# ----------------------------------------------------------------------------- evaluator


@dataclasses.dataclass
class EvalResult:
  """What one evaluation produced: flat scalars, confusion matrices, notes for the reader."""
  scalars: Dict[str, float]
  confusion: Dict[str, dict]
  notes: List[str]


def _confusion_entry(values: Sequence[str], accuracy: float, matrix: np.ndarray) -> dict:
  return {'values': list(values), 'accuracy': accuracy,
          'matrix': np.asarray(matrix).tolist()}  # rows: requested value, columns: predicted


class Evaluator:
  """FID / KID / precision-recall / control / memorisation of a run's EMA generator.

  Construct once per run (it may train and cache the attribute classifier); call `evaluate(state)`
  as often as needed. Every process of a multi-host run computes the same numbers; only process 0
  writes cache files.
  """

  def __init__(self, config, spec: pipeline.DatasetSpec, workdir: str,
               prior: Optional[label_prior_lib.LabelPrior] = None,
               sampler: Optional[EmaSampler] = None):
    """prior: the training split's label distribution if the caller already holds it (the
    training loop does); otherwise it is read from the workdir or counted from the dataset.
    sampler: the run's EmaSampler if the caller holds one (default: a new one)."""
    self.config, self.spec, self.workdir = config, spec, workdir
    self.notes: List[str] = []
    self._last_confusion: Dict[str, dict] = {}
    vocab = spec.vocabulary
    self.resolution = int(config.data.resolution)
    setting = functools.partial(eval_setting, config)
    self.num_samples = int(setting('num_samples'))
    self.batch_size = int(setting('batch_size'))
    self.seed = int(setting('seed'))
    self.per_value = int(setting('control_samples_per_value'))
    self.kid_subsets = int(setting('kid_subsets'))
    self.kid_subset_size = int(setting('kid_subset_size'))
    self.pr_k = int(setting('pr_k'))
    self.diversity_conditions = int(setting('diversity_conditions'))
    self.diversity_samples = int(setting('diversity_samples'))
    if self.diversity_conditions < 0 or self.diversity_samples < 2:
      raise ValueError('config.eval.diversity_conditions must be >= 0 (0: off) and '
                       f'diversity_samples >= 2; got {self.diversity_conditions}, '
                       f'{self.diversity_samples}.')
    for name in ('num_samples', 'batch_size', 'kid_subsets'):
      if getattr(self, name) < 1:
        raise ValueError(f'config.eval.{name} must be >= 1, got {getattr(self, name)}.')
    if self.kid_subset_size < 2 or self.pr_k < 1 or self.per_value < 0:
      raise ValueError('config.eval.kid_subset_size must be >= 2, pr_k >= 1 and '
                       'control_samples_per_value >= 0; got '
                       f'{self.kid_subset_size}, {self.pr_k}, {self.per_value}.')
    if self.num_samples <= self.pr_k:
      raise ValueError(f'config.eval.num_samples={self.num_samples} must exceed pr_k={self.pr_k} '
                       '(k-NN precision/recall); use a few hundred or more.')

    # The classifier judges the attributes that have a choice (>= 2 values).
    self.judged = [a for a, n in enumerate(vocab.num_classes) if n >= 2]
    if not self.judged:
      raise ValueError(
          f'{spec.builder.info.full_name} has no attribute with two or more values, so no '
          'attribute classifier (the domain feature extractor) can be trained. Evaluation needs a '
          'labelled dataset: add ClassLabel attributes (e.g. build a catalogue with a category '
          'column) or set config.eval_every_steps=0.')
    self.judged_names = [vocab.names[a] for a in self.judged]
    self.judged_classes = tuple(vocab.num_classes[a] for a in self.judged)
    self.conditional = bool(config.model.conditional) and len(vocab) > 0
    self.control_any = str(setting('control_any'))
    if self.control_any not in CONTROL_ANY_MODES:
      raise ValueError(f'config.eval.control_any must be one of {", ".join(CONTROL_ANY_MODES)}; '
                       f'got {self.control_any!r}.')
    if self.control_any == 'auto':
      self.control_any = 'catalogue'  # Always available here: built from the dataset if missing.

    train_split, eval_split = config.data.train_split, config.data.eval_split
    num_train = _split_size(spec, train_split, 'train')
    num_eval = _split_size(spec, eval_split, 'eval')
    self.num_real = min(self.num_samples, num_eval)
    if self.num_real <= self.pr_k:
      raise ValueError(f'The eval split {eval_split!r} has {num_eval} images; evaluation needs '
                       f'more than pr_k={self.pr_k}.')
    self.num_train = min(int(setting('max_train_examples')), num_train)

    cache_dir = setting('classifier_dir') or os.path.join(workdir, CLASSIFIER_DIR)
    slug = f'{spec.builder.info.full_name.replace("/", "_")}_{self.resolution}px'
    self._cache_prefix = os.path.join(cache_dir, slug)
    self._writes = jax.process_index() == 0
    if self.conditional and prior is None:
      prior = label_prior_lib.ensure(workdir, spec, train_split, write=self._writes)
    self.prior = prior if self.conditional else None

    batch = int(setting('classifier_batch_size'))
    self.classifier_settings = {
        'steps': int(setting('classifier_steps')) or auto_classifier_steps(self.num_train, batch),
        'batch_size': batch,
        'width': int(setting('classifier_width')),
        'feature_dim': int(setting('classifier_feature_dim')),
        'learning_rate': float(setting('classifier_learning_rate')),
        'flip': bool(setting('classifier_flip')),
    }
    if self.classifier_settings['steps'] < 2:
      raise ValueError('config.eval.classifier_steps must be 0 (auto) or >= 2, got '
                       f"{self.classifier_settings['steps']}.")
    self._train_data = functools.lru_cache(maxsize=1)(
        lambda: _random_subset(spec, train_split, self.resolution, self.num_train, self.seed))
    self._real_data = functools.lru_cache(maxsize=1)(
        lambda: _random_subset(spec, eval_split, self.resolution, self.num_real, self.seed + 1))

    self._trained_now = False
    self.classifier = self._prepare_classifier()
    self._prepare_real_features()
    self._prepare_inception(setting('inception_weights'))
    self._train_data.cache_clear()  # Only the features are needed from here on.
    self._real_data.cache_clear()
    self._prepare_generator(sampler)

  # --------------------------------------------------------------------------- preparation

  def _classifier_key(self) -> dict:
    vocab = self.spec.vocabulary
    return {'dataset': self.spec.builder.info.full_name, 'resolution': self.resolution,
            'attributes': {n: list(vocab.values(n)) for n in self.judged_names},
            'train_split': self.config.data.train_split, 'num_train': self.num_train,
            'seed': self.seed, **self.classifier_settings}

  def _prepare_classifier(self) -> classifier_lib.ClassifierBundle:
    path, key_path = self._cache_prefix + '.msgpack', self._cache_prefix + '.key.json'
    key = self._classifier_key()
    saved = _json_read(key_path)
    if saved is not None and saved.get('key') == key and tf.io.gfile.exists(path):
      try:
        bundle = _load_classifier(path)
        logging.info('Evaluation classifier loaded from %s.', path)
        return bundle
      except (ValueError, OSError) as e:
        logging.warning('Cached evaluation classifier %s is unusable (%s); retraining.', path, e)
    elif saved is not None:
      logging.info('Cached evaluation classifier %s was trained with other settings; retraining.',
                   path)
    self._trained_now = True  # Features cached for an earlier classifier no longer apply.
    images, labels = self._train_data()
    s = self.classifier_settings
    logging.info('Training the evaluation classifier on %d %s images (%d steps at batch %d) for '
                 'attributes %s.', len(images), self.config.data.train_split, s['steps'],
                 s['batch_size'], self.judged_names)
    bundle = classifier_lib.train_classifier(
        images, labels[:, self.judged], self.judged_classes, steps=s['steps'],
        batch_size=s['batch_size'], seed=self.seed, learning_rate=s['learning_rate'],
        width=s['width'], feature_dim=s['feature_dim'], augment=s['flip'],
        log_every=max(1, s['steps'] // 10))
    if self._writes:
      _save_classifier(bundle, path)
      _json_write(key_path, {'key': key})
    return bundle

  def _features_and_predictions(self, images) -> Tuple[np.ndarray, np.ndarray]:
    # One forward pass for both (features() and predict() would each run the network).
    return self.classifier._run(images, self.batch_size)  # pylint: disable=protected-access

  def _prepare_real_features(self):
    """Real-set and training features, held-out accuracy and the real-vs-real floor (cached)."""
    key = {'classifier': self._classifier_key(), 'eval_split': self.config.data.eval_split,
           'num_real': self.num_real,
           'diversity': [self.diversity_conditions, self.diversity_samples]}
    path = f'{self._cache_prefix}.features-{_fingerprint(key)}.npz'
    cached = None if self._trained_now else _npz_read(path)
    if cached is not None and str(cached.get('key')) == json.dumps(key, sort_keys=True):
      train_feats, real_feats = cached['train_features'], cached['real_features']
      real_labels, real_preds = cached['real_labels'], cached['real_predictions']
      diversity = {k: cached[k] for k in _DIVERSITY_KEYS}
    else:
      train_images, train_labels = self._train_data()
      real_images, real_labels = self._real_data()
      train_feats = self.classifier.features(train_images, self.batch_size)
      real_feats, real_preds = self._features_and_predictions(real_images)
      diversity = diversity_reference(train_images, train_labels, train_feats,
                                      self.diversity_conditions, self.diversity_samples, self.seed)
      if self._writes:
        _npz_write(path, {'key': np.array(json.dumps(key, sort_keys=True)),
                          'train_features': train_feats, 'real_features': real_feats,
                          'real_labels': real_labels, 'real_predictions': real_preds,
                          **diversity})
    self.diversity_labels = diversity['diversity_labels'].astype(np.int32)
    self.diversity_real = {'pixel': diversity['diversity_real_pixel'],
                           'feature': diversity['diversity_real_feature']}
    self.train_features, self.real_features = train_feats, real_feats
    self.real_labels = real_labels.astype(np.int32)
    self.real_stats = metrics.feature_statistics(real_feats)
    self.classifier_accuracy = {
        name: float(np.mean(real_preds[:, j] == self.real_labels[:, a]))
        for j, (a, name) in enumerate(zip(self.judged, self.judged_names))}
    self.real_nn = metrics.nearest_neighbour_distances(real_feats, train_feats)

    # Floor: a training subset the size of the real set against the real set.
    rng = np.random.default_rng(self.seed)
    floor_set = train_feats[rng.choice(len(train_feats), min(len(train_feats), self.num_real),
                                       replace=False)]
    kid, kid_err = metrics.kid(floor_set, real_feats, self.kid_subsets, self.kid_subset_size,
                               rng=self.seed)
    precision, recall = metrics.precision_recall(real_feats, floor_set, self.pr_k)
    self.floor = {'fid_floor': metrics.frechet_distance(*metrics.feature_statistics(floor_set),
                                                        *self.real_stats),
                  'kid_floor': kid, 'kid_floor_stderr': kid_err,
                  'precision_floor': precision, 'recall_floor': recall}
    logging.info('Evaluation classifier held-out accuracy %s; real-vs-real floor %s.',
                 self.classifier_accuracy, self.floor)
    weak = {n: round(a, 3) for n, a in self.classifier_accuracy.items() if a < WEAK_CLASSIFIER}
    if weak:
      self._note(f'The evaluation classifier is weak on held-out images ({weak}): control '
                 'accuracies of these attributes cannot be trusted. Raise '
                 'config.eval.classifier_steps (or classifier_width).')

  def _prepare_inception(self, weights: Optional[str]):
    self.inception = None
    if not weights:
      self._note('Inception FID is off: config.eval.inception_weights is not set (see '
                 'gan/evaluation/inception.py for the weights file). Domain metrics still run.')
      return
    try:
      module, variables = inception_lib.load_inception(weights)
    except (FileNotFoundError, ValueError) as e:
      self._note(f'Inception FID is off: {e} Domain metrics still run.')
      return
    real_images, _ = self._real_data()
    feats = inception_lib.inception_features(module, variables, real_images)
    self.inception = (module, variables, metrics.feature_statistics(feats))

  def _note(self, message: str):
    logging.warning('%s', message)
    self.notes.append(message)

  def _prepare_generator(self, sampler: Optional[EmaSampler]):
    """The EMA sampler and the fixed latents / labels of every eval."""
    vocab = self.spec.vocabulary
    num_classes = vocab.num_classes
    self.sampler = sampler or EmaSampler(self.config, num_classes)
    latent_dim = self.config.model.latent_dim
    rng = np.random.default_rng([self.seed, 7])
    n_real = len(self.real_labels)
    # Distribution set: the real set's attribute combinations, each used as evenly as possible.
    idx = np.concatenate([rng.permutation(n_real) for _ in range(-(-self.num_samples // n_real))])
    self.fid_labels = self.real_labels[idx[:self.num_samples]]
    self.fid_latents = rng.standard_normal((self.num_samples, latent_dim)).astype(np.float32)
    # Control set: each value of each judged attribute alone, the others "any" (see control_any);
    # groups are (key suffix: '' for control_any, '_unspecified' for the extra set; attribute
    # name, attribute index, labels, latents).
    self.control_groups = []
    if self.conditional and self.per_value:
      modes = [self.control_any]
      if self.control_any != 'unspecified' and float(self.config.attribute_dropout) > 0:
        modes.append('unspecified')
      for mode in modes:
        suffix = '' if mode == self.control_any else f'_{mode}'
        for a, name in zip(self.judged, self.judged_names):
          n = num_classes[a]
          labels = np.tile(vocab.unspecified(), (n * self.per_value, 1))
          labels[:, a] = np.repeat(np.arange(n), self.per_value)
          if mode == 'catalogue':
            labels = self.prior.fill(labels, rng)
          z = rng.standard_normal((len(labels), latent_dim)).astype(np.float32)
          self.control_groups.append((suffix, name, a, labels, z))
    # Diversity set: diversity_samples latents under each chosen full condition.
    self.diversity_set = None
    if self.conditional and len(self.diversity_labels):
      labels = np.repeat(self.diversity_labels, self.diversity_samples, axis=0)
      z = np.random.default_rng([self.seed, 13]).standard_normal(
          (len(labels), latent_dim)).astype(np.float32)
      self.diversity_set = (labels, z)

  # --------------------------------------------------------------------------- evaluation

  def with_standing_stats(self, state):
    """The state with ema_batch_stats re-estimated for its EMA weights (as the train loop does)."""
    return self.sampler.with_standing_stats(state)

  def generate(self, state, latents: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """uint8 images [N, R, R, 3] from the EMA generator (eval mode; state must be standing)."""
    # Padded: one compiled shape for every batch.
    return samples.to_uint8(self.sampler.generate_batched(state, latents, labels, self.batch_size,
                                                          pad=True))

  def evaluate(self, state) -> Dict[str, float]:
    """Flat scalar metrics ('eval/...') of the state's EMA generator; see `evaluate_full`."""
    return self.evaluate_full(state).scalars

  def confusion_matrices(self) -> Dict[str, dict]:
    """The last evaluation's confusion matrices (JSON-ready; rows requested, columns predicted)."""
    return self._last_confusion

  def evaluate_full(self, state) -> EvalResult:
    """Every metric of the state's EMA generator, plus confusion matrices and notes."""
    state = self.with_standing_stats(state)
    out = {f'classifier_acc/{n}': v for n, v in self.classifier_accuracy.items()}
    out.update(self.floor)
    confusion = {}

    images = self.generate(state, self.fid_latents, self.fid_labels)
    feats, preds = self._features_and_predictions(images)
    mu, sigma = metrics.feature_statistics(feats)
    out['fid'] = metrics.frechet_distance(mu, sigma, *self.real_stats)
    out['kid'], out['kid_stderr'] = metrics.kid(feats, self.real_features, self.kid_subsets,
                                                self.kid_subset_size, rng=self.seed)
    n_pr = min(len(feats), len(self.real_features))  # equal sizes keep P and R comparable
    out['precision'], out['recall'] = metrics.precision_recall(
        self.real_features[:n_pr], feats[:n_pr], self.pr_k)
    gen_nn = metrics.nearest_neighbour_distances(feats, self.train_features)
    out['memorisation_gen_median'] = float(np.median(gen_nn))
    out['memorisation_real_median'] = float(np.median(self.real_nn))
    out['memorisation_ratio'] = out['memorisation_gen_median'] / max(
        out['memorisation_real_median'], 1e-12)
    if self.inception is not None:
      module, variables, real_stats = self.inception
      incep = inception_lib.inception_features(module, variables, images)
      out['inception_fid'] = metrics.frechet_distance(*metrics.feature_statistics(incep),
                                                      *real_stats)

    if self.conditional:
      intra = []
      for a, name in zip(self.judged, self.judged_names):
        out[f'intra_fid/{name}'], _ = metrics.intra_fid(feats, self.fid_labels[:, a],
                                                        self.real_features, self.real_labels[:, a])
        intra.append(out[f'intra_fid/{name}'])
      out['intra_fid/mean'] = float(np.mean(intra))
    if self.diversity_set is not None:
      out.update(self._diversity(state))

    if self.conditional:
      vocab = self.spec.vocabulary
      all_right = np.ones(len(preds), bool)
      for j, (a, name) in enumerate(zip(self.judged, self.judged_names)):
        acc, matrix = metrics.control_accuracy(self.fid_labels[:, a], preds[:, j],
                                               self.judged_classes[j])
        out[f'control_acc_joint/{name}'] = acc
        confusion[f'joint/{name}'] = _confusion_entry(vocab.values(name), acc, matrix)
        all_right &= preds[:, j] == self.fid_labels[:, a]
      out['control_acc_joint/all'] = float(np.mean(all_right))
      for suffix, name, a, labels, z in self.control_groups:
        j = self.judged.index(a)
        pred = self.classifier.predict(self.generate(state, z, labels), self.batch_size)[:, j]
        acc, matrix = metrics.control_accuracy(labels[:, a], pred, self.judged_classes[j])
        out[f'control_acc{suffix}/{name}'] = acc
        confusion[f'single{suffix}/{name}'] = _confusion_entry(vocab.values(name), acc, matrix)
      single = [out[f'control_acc/{name}'] for suffix, name, *_ in self.control_groups
                if not suffix]
      if single:
        out['control_acc/mean'] = float(np.mean(single))

    self._last_confusion = confusion
    scalars = {PREFIX + k: float(v) for k, v in out.items()}
    return EvalResult(scalars, confusion, list(self.notes))

  def _diversity(self, state) -> Dict[str, float]:
    """diversity/pixel and diversity/feature of the EMA generator (see the module docstring)."""
    labels, z = self.diversity_set
    k, m = len(self.diversity_labels), self.diversity_samples
    images = self.generate(state, z, labels)
    feats = self.classifier.features(images, self.batch_size)
    per_condition = lambda x: [x[i * m:(i + 1) * m] for i in range(k)]
    return {'diversity/pixel': metrics.diversity_ratio(
                per_condition(images), self.diversity_real['pixel'], metrics.mean_pairwise_rms),
            'diversity/feature': metrics.diversity_ratio(
                per_condition(feats), self.diversity_real['feature'])}

  def settings(self) -> dict:
    """What the numbers depend on besides the generator (for reports and comparisons)."""
    return {'num_samples': self.num_samples, 'num_real': self.num_real,
            'num_train_reference': len(self.train_features), 'seed': self.seed,
            'control_samples_per_value': self.per_value, 'control_any': self.control_any,
            'kid_subsets': self.kid_subsets,
            'kid_subset_size': self.kid_subset_size, 'pr_k': self.pr_k,
            'diversity_conditions': len(self.diversity_labels),
            'diversity_samples': self.diversity_samples,
            'feature_space': f'attribute classifier ({self.classifier.feature_dim}-d)',
            'classifier': self._classifier_key(),
            'inception': self.inception is not None}


# ----------------------------------------------------------------------------- best checkpoint


class BestCheckpoint:
  """The best checkpoint by `eval/fid` (lower is better), kept apart from the latest ones.

  Layout: <workdir>/best_checkpoint/<step>/ (one orbax checkpoint) and
  <workdir>/best_checkpoint.json ({'step', 'metric', 'value', 'metrics'}), written after the
  checkpoint so it never names a step that is not on disk. Survives restarts: a resumed run only
  replaces it with a better one.
  """

  def __init__(self, workdir: str, metric: str = BEST_METRIC, min_diversity: float = 0.0):
    self.workdir, self.metric, self.min_diversity = workdir, metric, float(min_diversity)
    self.json_path = os.path.join(workdir, BEST_JSON)
    self._checkpointer = None  # Created on the first save: reading best() must not create dirs.
    # Read once, then kept in memory: every process of a multi-host run decides alike without
    # racing process 0's JSON writes.
    self._best = None
    self._loaded = False

  @property
  def directory(self) -> str:
    return checkpoint_lib.checkpoint_dir(self.workdir, checkpoint_lib.BEST_CHECKPOINT_DIR)

  def best(self) -> Optional[Tuple[int, Dict[str, float]]]:
    """(step, metrics) of the best checkpoint so far, or None."""
    if not self._loaded:
      info = _json_read(self.json_path)
      if info and 'step' in info:
        self._best = (int(info['step']), dict(info.get('metrics', {})))
      self._loaded = True
    return None if self._best is None else (self._best[0], dict(self._best[1]))

  def update(self, step: int, state, metrics_: Dict[str, float]) -> bool:
    """Saves `state` as the best checkpoint if metrics_[metric] beats the best so far."""
    if self.metric not in metrics_:
      raise ValueError(f'BestCheckpoint ranks by {self.metric!r}, which is not among the metrics '
                       f'given ({", ".join(sorted(metrics_)) or "none"}). Pass Evaluator.evaluate '
                       'output.')
    value = float(metrics_[self.metric])
    if not np.isfinite(value):
      logging.warning('Not keeping step %d as best: %s is %s.', step, self.metric, value)
      return False
    diversity = metrics_.get(DIVERSITY_METRIC)
    if diversity is not None and diversity < self.min_diversity:
      logging.warning('Not keeping step %d as best: %s = %.3f is below min_best_diversity = %.3g '
                      '(the generator draws near-copies within a condition).', step,
                      DIVERSITY_METRIC, diversity, self.min_diversity)
      return False
    current = self.best()
    if current is not None and self.metric in current[1] and not value < current[1][self.metric]:
      return False
    if self._checkpointer is None:
      self._checkpointer = checkpoint_lib.Checkpointer(
          self.workdir, max_to_keep=1, subdir=checkpoint_lib.BEST_CHECKPOINT_DIR)
    if step not in self._checkpointer.steps():  # e.g. re-evaluated after a crash before the JSON
      self._checkpointer.save(step, state)
    kept = {k: float(v) for k, v in metrics_.items()}
    if jax.process_index() == 0:
      _json_write(self.json_path, {'step': int(step), 'metric': self.metric, 'value': value,
                                   'metrics': kept})
    self._best = (int(step), kept)
    logging.info('New best checkpoint at step %d: %s = %.4g.', step, self.metric, value)
    return True

  def close(self):
    if self._checkpointer is not None:
      self._checkpointer.close()
