"""The real side of evaluation, prepared once per run and cached: the judge, real features, floors.

`Reference(config, spec, workdir).prepare()` does the expensive work, cached under
`<workdir>/eval_classifier/` (or `config.eval.classifier_dir`):

- the domain feature extractor: an attribute classifier (`gan.evaluation.classifier`) trained on
  the run's training split, one head per attribute that has a choice, with its accuracy on the
  held-out split. The cache file is named after the dataset (TFDS full name) and resolution, and a
  key file next to it records what it was trained on, so another dataset, attribute set or
  classifier setting retrains;
- classifier features of a fixed random subset of the held-out split (the "real" set) and of the
  training split (the memorisation reference and the real-vs-real floor), and the diversity
  reference (the most frequent full conditions and their real spread);
- Inception-V3 statistics of the real set when asked and `config.eval.inception_weights` is a
  readable file (not cached; without it a note says so).

Every process of a multi-host run computes the same reference; only process 0 writes the cache.
"""
import functools
import json
import os
from typing import List, Optional, Tuple

import jax
import numpy as np
import tensorflow as tf
from absl import logging

from gan import rundir
from gan.data import label_prior as label_prior_lib
from gan.evaluation import cache
from gan.evaluation import classifier as classifier_lib
from gan.evaluation import inception as inception_lib
from gan.evaluation import metrics, real_data, settings

# Held-out accuracy below which the classifier's control verdicts come with a warning.
WEAK_CLASSIFIER = 0.8


class Reference:
  """What generated images are compared with; read its fields after `prepare()`."""

  def __init__(self, config, spec, workdir: str,
               prior: Optional[label_prior_lib.LabelPrior] = None, inception: bool = False):
    """prior: the training split's label distribution if the caller already holds it (the
    training loop does); otherwise prepare() reads it from the workdir or counts the dataset.
    inception: also prepare Inception-V3 statistics (if config.eval.inception_weights is set)."""
    e = config.eval
    vocab = spec.vocabulary
    self.config, self.spec, self.workdir, self.vocab = config, spec, workdir, vocab
    self.notes: List[str] = []
    self.resolution = int(config.data.resolution)
    self.seed, self.batch_size = int(e.seed), int(e.batch_size)
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

    train_split, eval_split = config.data.train_split, config.data.eval_split
    num_train = real_data.split_size(spec, train_split, 'train')
    num_eval = real_data.split_size(spec, eval_split, 'eval')
    self.num_real = min(int(e.num_samples), num_eval)
    if self.num_real <= e.pr_k:
      raise ValueError(f'The eval split {eval_split!r} has {num_eval} images; evaluation needs '
                       f'more than pr_k={e.pr_k}.')
    self.num_train = min(int(e.max_train_examples), num_train)
    self.classifier_settings = {
        'steps': int(e.classifier_steps) or settings.auto_classifier_steps(
            self.num_train, int(e.classifier_batch_size)),
        'batch_size': int(e.classifier_batch_size), 'width': int(e.classifier_width),
        'feature_dim': int(e.classifier_feature_dim),
        'learning_rate': float(e.classifier_learning_rate), 'flip': bool(e.classifier_flip)}
    cache_dir = e.classifier_dir or rundir.join(workdir, rundir.EVAL_CLASSIFIER)
    slug = f'{spec.builder.info.full_name.replace("/", "_")}_{self.resolution}px'
    self._cache_prefix = os.path.join(cache_dir, slug)
    self._writes = jax.process_index() == 0
    self.prior = prior if self.conditional else None
    self._wants_inception = inception
    self._train_data = functools.lru_cache(maxsize=1)(
        lambda: real_data.random_subset(spec, train_split, self.resolution, self.num_train,
                                        self.seed))
    self._real_data = functools.lru_cache(maxsize=1)(
        lambda: real_data.random_subset(spec, eval_split, self.resolution, self.num_real,
                                        self.seed + 1))
    self.inception = None  # (module, variables, real statistics) once prepared.

  def prepare(self) -> 'Reference':
    """Loads or trains the classifier and loads or computes the real features (both cached)."""
    if self.conditional and self.prior is None:
      self.prior = label_prior_lib.ensure(self.workdir, self.spec, self.config.data.train_split,
                                          write=self._writes)
    trained_now = False
    self.classifier = self._load_classifier()
    if self.classifier is None:
      self.classifier, trained_now = self._train_classifier(), True
    self._prepare_features(use_cache=not trained_now)  # Older features fit an older classifier.
    if self._wants_inception:
      self._prepare_inception()
    self._train_data.cache_clear()  # Only the features are needed from here on.
    self._real_data.cache_clear()
    return self

  # --------------------------------------------------------------------------- the judge

  def classifier_key(self) -> dict:
    """What the cached classifier was trained on; any difference retrains it."""
    return {'dataset': self.spec.builder.info.full_name, 'resolution': self.resolution,
            # A list, not a dict: the judge's outputs follow this order (a dict compares equal
            # in any order, and a judge trained in another order would read the wrong columns).
            'attributes': [[n, list(self.vocab.values(n))] for n in self.judged_names],
            'train_split': self.config.data.train_split, 'num_train': self.num_train,
            'seed': self.seed, **self.classifier_settings}

  def _load_classifier(self) -> Optional[classifier_lib.ClassifierBundle]:
    path, saved = self._cache_prefix + '.msgpack', cache.read_json(self._cache_prefix + '.key.json')
    if saved is not None and saved.get('key') == self.classifier_key() \
        and tf.io.gfile.exists(path):
      try:
        bundle = classifier_lib.load_classifier(path)
        logging.info('Evaluation classifier loaded from %s.', path)
        return bundle
      except (ValueError, OSError) as e:
        logging.warning('Cached evaluation classifier %s is unusable (%s); retraining.', path, e)
    elif saved is not None:
      logging.info('Cached evaluation classifier %s was trained with other settings; retraining.',
                   path)
    return None

  def _train_classifier(self) -> classifier_lib.ClassifierBundle:
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
      classifier_lib.save_classifier(bundle, self._cache_prefix + '.msgpack')
      cache.write_json(self._cache_prefix + '.key.json', {'key': self.classifier_key()})
    return bundle

  def features_and_predictions(self, images) -> Tuple[np.ndarray, np.ndarray]:
    """Classifier features and predicted values of images, in one forward pass."""
    return self.classifier._run(images, self.batch_size)  # pylint: disable=protected-access

  # --------------------------------------------------------------------------- real features

  def _prepare_features(self, use_cache: bool):
    """Real-set and training features, held-out accuracy and the diversity reference (cached)."""
    e = self.config.eval
    key = {'classifier': self.classifier_key(), 'eval_split': self.config.data.eval_split,
           'num_real': self.num_real,
           'diversity': [int(e.diversity_conditions), int(e.diversity_samples)]}
    path = f'{self._cache_prefix}.features-{cache.fingerprint(key)}.npz'
    cached = cache.read_npz(path) if use_cache else None
    if cached is not None and str(cached.get('key')) == json.dumps(key, sort_keys=True):
      train_feats, real_feats = cached['train_features'], cached['real_features']
      real_labels, real_preds = cached['real_labels'], cached['real_predictions']
      diversity = {k: cached[k] for k in real_data.DIVERSITY_KEYS}
    else:
      train_images, train_labels = self._train_data()
      real_images, real_labels = self._real_data()
      train_feats = self.classifier.features(train_images, self.batch_size)
      real_feats, real_preds = self.features_and_predictions(real_images)
      diversity = real_data.diversity_reference(
          train_images, train_labels, train_feats, int(e.diversity_conditions),
          int(e.diversity_samples), self.seed)
      if self._writes:
        cache.write_npz(path, {'key': np.array(json.dumps(key, sort_keys=True)),
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
    logging.info('Evaluation classifier held-out accuracy %s.', self.classifier_accuracy)
    weak = {n: round(a, 3) for n, a in self.classifier_accuracy.items() if a < WEAK_CLASSIFIER}
    if weak:
      self._note(f'The evaluation classifier is weak on held-out images ({weak}): control '
                 'accuracies of these attributes cannot be trusted. Raise '
                 'config.eval.classifier_steps (or classifier_width).')

  @functools.cached_property
  def floor_features(self) -> np.ndarray:
    """A training subset the size of the real set: real-vs-real floors compare it with the real
    set (a generator cannot beat them in practice)."""
    rng = np.random.default_rng(self.seed)
    train = self.train_features
    return train[rng.choice(len(train), min(len(train), self.num_real), replace=False)]

  # --------------------------------------------------------------------------- Inception

  def _prepare_inception(self):
    weights = self.config.eval.inception_weights
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
