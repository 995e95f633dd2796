"""Evaluator, its settings and registry, BestCheckpoint and the gan.evaluate CLI on a tiny run."""
import dataclasses
import json
import os
import re

import jax
import numpy as np
import pytest

from gan import checkpoint, evaluate, rundir, train
from gan.best_checkpoint import BestCheckpoint
from gan.data import pipeline
from gan.data import vocab as vocab_lib
from gan.evaluation import classifier, evaluators, settings
from gan.evaluation import evaluator as evaluator_lib
from tests.conftest import tiny_config

# Small enough for seconds on 2 cores; the classifier still learns the tiny catalogue's colours.
EVAL_OVERRIDES = {
    'eval.num_samples': 64, 'eval.batch_size': 64, 'eval.control_samples_per_value': 2,
    'eval.kid_subsets': 10, 'eval.kid_subset_size': 32, 'eval.max_train_examples': 512,
    'eval.classifier_steps': 150, 'eval.classifier_batch_size': 32, 'eval.classifier_width': 8,
    'eval.classifier_feature_dim': 16, 'eval.classifier_learning_rate': 5e-3,
}


def _config(tfds_dir, **overrides):
  # One step: a second one recompiles the pmapped step (input sharding changes), doubling the cost.
  return tiny_config(**{'data.data_dir': tfds_dir, 'num_train_steps': 1, 'sample_every_steps': 0,
                        **EVAL_OVERRIDES, **overrides})


@pytest.fixture(scope='module')
def run(tfds_dir, tmp_path_factory):
  """A 1-step run (essentially a random generator) with its evaluator; the classifier is cached."""
  workdir = str(tmp_path_factory.mktemp('eval_run'))
  config = _config(tfds_dir)
  state = train.train_and_evaluate(config, workdir)
  spec = pipeline.open_dataset(config.data.name, config.data.data_dir)
  return workdir, config, spec, state, evaluator_lib.Evaluator(config, spec, workdir)


def test_metrics_are_complete_and_finite(run):
  _, config, spec, state, evaluator = run
  scalars = evaluator.evaluate(state)
  attributes = spec.vocabulary.names
  expected = {'eval/fid', 'eval/kid', 'eval/kid_stderr', 'eval/precision', 'eval/recall',
              'eval/memorisation_ratio', 'eval/memorisation_gen_median',
              'eval/memorisation_real_median', 'eval/fid_floor', 'eval/kid_floor',
              'eval/control_acc/mean', 'eval/control_acc_joint/all'}
  expected |= {'eval/intra_fid/mean', 'eval/diversity/pixel', 'eval/diversity/feature'}
  for a in attributes:
    expected |= {f'eval/control_acc/{a}', f'eval/control_acc_joint/{a}', f'eval/classifier_acc/{a}',
                 f'eval/control_acc_unspecified/{a}',  # Trained with attribute dropout.
                 f'eval/intra_fid/{a}'}
  assert expected <= set(scalars), expected - set(scalars)
  assert 'eval/inception_fid' not in scalars
  assert all(isinstance(v, float) and np.isfinite(v) for v in scalars.values()), scalars
  for k in ('precision', 'recall', 'control_acc/mean', 'control_acc_joint/all'):
    assert 0.0 <= scalars[f'eval/{k}'] <= 1.0
  # The floor is real-vs-real; a barely trained generator is far from the data.
  assert scalars['eval/fid_floor'] * 3 < scalars['eval/fid'], scalars
  assert scalars['eval/kid_floor'] < scalars['eval/kid'], scalars
  # The classifier judges real held-out images much better than chance (1/8 and 1/12).
  assert scalars['eval/classifier_acc/category'] > 0.5, scalars
  assert scalars['eval/classifier_acc/colour'] > 0.3, scalars

  confusion = evaluator.confusion_matrices()
  for a, n in zip(attributes, spec.vocabulary.num_classes):
    single = np.array(confusion[f'single/{a}']['matrix'])
    assert single.shape == (n, n)
    np.testing.assert_array_equal(single.sum(axis=1), 2)  # control_samples_per_value each
    assert confusion[f'single/{a}']['values'] == list(spec.vocabulary.values(a))
    assert confusion[f'single/{a}']['accuracy'] == pytest.approx(scalars[f'eval/control_acc/{a}'])
    assert confusion[f'single_unspecified/{a}']['accuracy'] == pytest.approx(
        scalars[f'eval/control_acc_unspecified/{a}'])
    assert np.array(confusion[f'joint/{a}']['matrix']).sum() == 64  # num_samples


def test_control_set_draws_the_other_attributes_from_the_catalogue(run):
  workdir, _, spec, _, evaluator = run
  vocab = spec.vocabulary
  prior = evaluator.reference.prior
  assert os.path.exists(os.path.join(workdir, 'label_distribution.json'))
  seen = {tuple(c) for c in prior.combinations}
  groups = {f'control_acc{suffix}/{name}': (a, labels)
            for suffix, name, a, labels, _ in evaluator.evaluators['control'].groups}
  for a, name in enumerate(vocab.names):
    _, labels = groups[f'control_acc/{name}']
    np.testing.assert_array_equal(labels[:, a], np.repeat(np.arange(vocab.num_classes[a]), 2))
    assert all(tuple(row) in seen for row in labels)  # Full labels the catalogue holds.
    _, null = groups[f'control_acc_unspecified/{name}']
    others = np.delete(null, a, axis=1)
    assert np.all(others == np.delete(vocab.unspecified(), a)[None])


def test_result_does_not_depend_on_stale_batch_stats(run):
  _, _, _, state, evaluator = run
  stale = state.replace(ema_batch_stats=jax.tree_util.tree_map(lambda x: x * 0 + 3.0,
                                                               state.ema_batch_stats))
  assert evaluator.evaluate(stale) == evaluator.evaluate(state)


def test_classifier_is_cached_and_keyed_by_settings(run, monkeypatch):
  workdir, config, spec, _, evaluator = run
  cache = os.path.join(workdir, rundir.EVAL_CLASSIFIER)
  names = sorted(os.listdir(cache))
  prefix = f'synthetic_products_tiny_{spec.builder.version}_16px'
  assert {f'{prefix}.msgpack', f'{prefix}.json', f'{prefix}.key.json'} <= set(names), names
  assert any(n.startswith(f'{prefix}.features-') for n in names), names

  def no_training(*args, **kwargs):
    raise AssertionError('retrained')
  monkeypatch.setattr(classifier, 'train_classifier', no_training)
  again = evaluator_lib.Evaluator(config, spec, workdir)
  assert again.reference.classifier_accuracy == evaluator.reference.classifier_accuracy
  assert again.floor == evaluator.floor
  with pytest.raises(AssertionError, match='retrained'):  # other settings: a new classifier
    evaluator_lib.Evaluator(_config(config.data.data_dir, **{'eval.classifier_steps': 151}), spec,
                            workdir)
  # The same attributes in another order: the judge's output columns would be read wrongly.
  reordered = dataclasses.replace(spec, vocabulary=vocab_lib.Vocabulary.from_dict(
      dict(reversed(spec.vocabulary.attributes))))
  assert reordered.vocabulary.names != spec.vocabulary.names
  with pytest.raises(AssertionError, match='retrained'):
    evaluator_lib.Evaluator(config, reordered, workdir)


def test_bad_eval_settings_raise(run):
  workdir, config, spec, _, _ = run
  with pytest.raises(ValueError, match='num_samples=2 must exceed pr_k=3'):
    evaluator_lib.Evaluator(_config(config.data.data_dir, **{'eval.num_samples': 2}), spec, workdir)
  with pytest.raises(ValueError, match='classifier_steps must be 0 \\(auto\\) or >= 2'):
    evaluator_lib.Evaluator(_config(config.data.data_dir, **{'eval.classifier_steps': 1}), spec,
                            workdir)
  with pytest.raises(ValueError, match='control_any must be one of auto, catalogue, unspecified'):
    evaluator_lib.Evaluator(_config(config.data.data_dir, **{'eval.control_any': 'any'}), spec,
                            workdir)
  with pytest.raises(ValueError, match="eval split 'validation'"):
    evaluator_lib.Evaluator(_config(config.data.data_dir, **{'data.eval_split': 'validation'}),
                            spec, workdir)


def _ignoring_latent(state, latent_dim):
  """The state with the z rows of G's first layer zeroed: z reaches nothing, as in a collapse."""
  def zero(params):
    params = jax.tree_util.tree_map(lambda x: x, params)  # a copy of the nesting
    kernel = np.array(params['project']['kernel'])
    kernel[:latent_dim] = 0.0
    params['project']['kernel'] = kernel
    return params
  return state.replace(ema_params=zero(state.ema_params), g_params=zero(state.g_params))


def test_generator_that_ignores_z_is_scored_collapsed_and_never_best(run, tmp_path):
  _, config, spec, state, evaluator = run
  assert not config.model.latent_in_every_layer  # z enters through the first layer only
  scalars = evaluator.evaluate(state)
  collapsed = evaluator.evaluate(_ignoring_latent(state, config.model.latent_dim))
  assert collapsed['eval/diversity/pixel'] < 1e-3, collapsed
  assert collapsed['eval/diversity/feature'] < 1e-3, collapsed
  assert scalars['eval/diversity/pixel'] > 0.05, scalars
  diversity_labels = evaluator.reference.diversity_labels
  assert evaluator.evaluators['diversity'].inputs[0].shape == (len(diversity_labels) * 24,
                                                               len(spec.vocabulary))
  assert len(diversity_labels) == 8  # eval.diversity_conditions
  # Intra-FID and the diversity gate: a collapsed checkpoint is never kept as best.
  assert settings.best_metric(config) == 'eval/intra_fid/mean'
  best = BestCheckpoint(str(tmp_path), settings.best_metric(config), 0.3)
  assert not best.update(1, state, dict(collapsed, **{'eval/intra_fid/mean': 0.0}))
  assert best.best() is None
  assert best.update(2, state, dict(collapsed, **{'eval/diversity/pixel': 0.8}))
  best.close()


def test_best_checkpoint_keeps_the_lowest_fid(run, tmp_path):
  _, _, _, state, _ = run
  workdir = str(tmp_path)
  best = BestCheckpoint(workdir)
  assert best.best() is None
  assert not os.path.exists(best.directory)  # reading creates nothing
  assert best.update(1, state, {'eval/fid': 5.0, 'eval/kid': 0.5})
  assert not best.update(2, state, {'eval/fid': 7.0})
  assert not best.update(3, state, {'eval/fid': float('nan')})
  assert best.update(4, state, {'eval/fid': 3.0, 'eval/kid': 0.1})
  assert best.best() == (4, {'eval/fid': 3.0, 'eval/kid': 0.1})
  with pytest.raises(ValueError, match="ranks by 'eval/fid'"):
    best.update(5, state, {'eval/kid': 0.0})
  best.close()
  assert checkpoint.Checkpointer(workdir, subdir=rundir.BEST_CHECKPOINT).steps() == [4]
  # A restarted run sees the same best and only replaces it with a better one.
  reopened = BestCheckpoint(workdir)
  assert reopened.best()[0] == 4
  assert not reopened.update(6, state, {'eval/fid': 3.5})
  with open(os.path.join(workdir, rundir.BEST_CHECKPOINT_INFO)) as f:
    assert json.load(f)['step'] == 4


def test_cli_writes_json_and_prints_table(run, capsys):
  workdir, _, _, state, evaluator = run
  assert evaluate.main(['--workdir', workdir, '--checkpoint', 'latest',
                        '--inception_weights', os.path.join(workdir, 'absent.npz')]) == 0
  out = capsys.readouterr().out
  assert 'Step 1 (latest checkpoint)' in out
  assert 'fid_floor' in out and 'control_acc/colour' in out
  assert 'note: Inception FID is off: No Inception weights at' in out
  with open(os.path.join(workdir, 'eval_1.json')) as f:
    report = json.load(f)
  assert report['step'] == 1 and report['checkpoint'] == 'latest'
  assert report['metrics'] == pytest.approx(evaluator.evaluate(state))  # same run, same numbers
  assert report['confusion']['single/category']['matrix']
  assert report['settings']['num_samples'] == 64


def test_cli_errors(run, capsys):
  workdir = run[0]
  assert evaluate.main(['--workdir', workdir, '--checkpoint', '999']) == 2
  assert 'No checkpoint for step 999' in capsys.readouterr().err


def test_evaluation_inside_training_keeps_the_best_checkpoint_sampling_uses(run, tmp_path,
                                                                           capsys):
  """End to end: eval_every_steps > 0 writes eval/* scalars and keeps a best checkpoint, which
  gan.sample then loads by default. (One step: each more step or resume compiles the pmapped
  step again; test_control checks that `best` is preferred when it differs from the latest.)"""
  from tensorboard.backend.event_processing import event_accumulator
  from gan import sample as sample_cli
  workdir = str(tmp_path / 'run')
  cache = os.path.join(run[0], rundir.EVAL_CLASSIFIER)  # Same settings: no retraining.
  config = _config(run[1].data.data_dir, **{'eval_every_steps': 1, 'eval.classifier_dir': cache})
  train.train_and_evaluate(config, workdir)

  events = event_accumulator.EventAccumulator(workdir, size_guidance={'tensors': 0})
  events.Reload()
  eval_tags = [t for t in events.Tags()['tensors'] if t.startswith('eval/')]
  assert len(eval_tags) > 10, events.Tags()['tensors']
  for tag in eval_tags:
    assert [e.step for e in events.Tensors(tag)] == [1], tag
  with open(os.path.join(workdir, rundir.BEST_CHECKPOINT_INFO)) as f:
    best = json.load(f)
  assert best['step'] == 1 and best['metric'] in eval_tags
  assert best['metrics'] == pytest.approx({t: float(tf_value(events, t)) for t in eval_tags})
  best_dir = rundir.BEST_CHECKPOINT
  assert checkpoint.Checkpointer(workdir, subdir=best_dir).steps() == [1]

  out = str(tmp_path / 'samples.png')
  assert sample_cli.main([f'--workdir={workdir}', '--num', '2', '--out', out]) == 0
  assert f'{workdir}: best checkpoint, step 1' in capsys.readouterr().out


def tf_value(events, tag):
  import tensorflow as tf
  return tf.make_ndarray(events.Tensors(tag)[-1].tensor_proto)


def test_inception_weights_add_inception_fid(run, tmp_path):
  """config.eval.inception_weights: the evaluator adds eval/inception_fid (random weights here;
  their features are checked against pytorch-fid's in test_inception.py)."""
  from gan.evaluation import inception
  workdir, config, spec, state, _ = run
  weights = str(tmp_path / 'inception.npz')
  inception.save_inception_weights(inception.random_variables(seed=0), weights)
  # Few images: Inception-V3 at 299x299 costs ~6 GFLOP per image.
  small = _config(config.data.data_dir, **{
      'eval.inception_weights': weights, 'eval.num_samples': 8, 'eval.batch_size': 8,
      'eval.kid_subsets': 2, 'eval.kid_subset_size': 4})
  evaluator = evaluator_lib.Evaluator(small, spec, workdir)
  assert evaluator.settings()['inception']
  assert not [note for note in evaluator.notes if 'Inception' in note], evaluator.notes
  scalars = evaluator.evaluate(state)
  assert np.isfinite(scalars['eval/inception_fid']) and scalars['eval/inception_fid'] > 0


def test_chosen_metrics_give_only_their_scalars_with_the_same_numbers(run):
  workdir, config, spec, state, evaluator = run
  full = evaluator.evaluate(state)
  chosen = _config(config.data.data_dir, **{'eval.metrics': ('memorisation', 'fid'),
                                            'eval.best_metric': 'fid'})
  subset = evaluator_lib.Evaluator(chosen, spec, workdir, sampler=evaluator.sampler)
  scalars = subset.evaluate(state)
  assert set(scalars) == {f'eval/{name}' for name in (
      'fid', 'kid', 'kid_stderr', 'fid_floor', 'kid_floor', 'kid_floor_stderr',
      'memorisation_gen_median', 'memorisation_real_median', 'memorisation_ratio')}
  assert scalars == {k: full[k] for k in scalars}
  assert subset.confusion_matrices() == {}
  assert subset.settings()['metrics'] == ['memorisation', 'fid']


def test_unknown_metric_is_an_error_listing_the_valid_ones():
  with pytest.raises(ValueError, match=re.escape(
      "Unknown evaluation metric 'fidd'. Valid evaluation metric names: control, diversity, fid, "
      'inception_fid, intra_fid, memorisation, precision_recall.')):
    evaluators.EVALUATORS.get('fidd')
  assert evaluators.EVALUATORS.get('intra_fid').reports('intra_fid/colour')
  assert not evaluators.EVALUATORS.get('intra_fid').reports('intra_fid/')


@pytest.mark.parametrize('field, value, message', [
    ('metrics', ('fid', 'fidd'), "config.eval.metrics: Unknown evaluation metric 'fidd'. Valid "
                                 'evaluation metric names: control, diversity, fid,'),
    ('metrics', (), 'config.eval.metrics is empty; choose some of: control,'),
    ('num_samples', 0, 'config.eval.num_samples must be an integer >= 2, got 0.'),
    ('batch_size', -8, 'config.eval.batch_size must be an integer >= 1, got -8.'),
    ('diversity_samples', 1, 'config.eval.diversity_samples must be an integer >= 2, got 1.'),
    ('classifier_steps', 1, 'config.eval.classifier_steps must be 0 (auto) or >= 2, got 1.'),
    ('control_any', 'random', 'config.eval.control_any must be one of auto, catalogue, '
                              "unspecified; got 'random'."),
    ('classifier_learning_rate', 0.0, 'config.eval.classifier_learning_rate must be a positive'),
    ('min_best_diversity', -0.5, 'config.eval.min_best_diversity must be a non-negative number'),
    ('best_metric', 'fdi', "config.eval.best_metric='fdi' ranks by eval/fdi, which none of "
                           'config.eval.metrics'),
    # auto is intra_fid/mean for a conditional run: its evaluator must run.
    ('metrics', ('fid',), "config.eval.best_metric='auto' ranks by eval/intra_fid/mean, which "
                          'none of config.eval.metrics (fid) reports'),
])
def test_eval_settings_are_checked_with_the_config_before_any_work(tmp_path, field, value,
                                                                    message):
  workdir = str(tmp_path / 'run')
  with pytest.raises(ValueError, match=re.escape(message)):
    train.train_and_evaluate(tiny_config(**{f'eval.{field}': value}), workdir)
  assert not os.path.exists(workdir)
  settings.validate(tiny_config())  # Today's defaults (configs/default.py) are valid.
