"""The training driver: the only place with I/O. train_and_evaluate(config, workdir)."""
import dataclasses
import time
from typing import Dict, List, Optional

import jax
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging
from clu import metric_writers, periodic_actions

from gan import checkpoint as checkpoint_lib
from gan import sampler as sampler_lib
from gan import losses as losses_lib
from gan import rundir
from gan import optim, parallel, preemption, samples, state as state_lib, steps, workdir as workdir_lib
from gan.data import augment as augment_lib
from gan.data import diffaug
from gan.data import label_prior as label_prior_lib
from gan.data import pipeline
from gan.data.vocab import Vocabulary
from gan.best_checkpoint import BestCheckpoint
from gan.evaluation import evaluator as evaluator_lib
from gan.evaluation import settings as eval_settings
from gan.models import build_models


class DivergenceError(RuntimeError):
  """A loss or parameter became NaN/Inf; the last good checkpoint stays the latest."""


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Catches configuration mistakes before any work is done, each with a clear message."""
  losses_lib.LOSSES.get(config.loss)
  build_models(config, num_classes=())  # Unknown names, bad model settings raise here.
  parallel.per_device_batch_size(config.batch_size)
  if config.d_steps_per_g_step < 1:
    raise ValueError(f'd_steps_per_g_step must be >= 1, got {config.d_steps_per_g_step}.')
  if not 0.0 <= config.attribute_dropout < 1.0:
    raise ValueError(f'attribute_dropout must be in [0, 1), got {config.attribute_dropout}.')
  if config.num_train_steps < 1:
    raise ValueError(f'num_train_steps must be >= 1, got {config.num_train_steps}.')
  prefetch = config.data.prefetch
  if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
    raise ValueError(f'data.prefetch must be a whole number >= 0 (batches prefetched onto the '
                     f'devices; 0 = off), got {prefetch!r}.')
  augment_lib.parse_spec(config.data.augment)
  diffaug.parse_policy(config.diffaug)
  steps.check_aux_classifier_config(config)
  steps.check_mode_seeking_config(config)
  eval_settings.validate(config)


def make_augment_fns(config, vocabulary):
  """(tf.data per-image augmentation or None, in-step DiffAugment or None)."""
  conditioned = vocabulary.names if config.model.conditional else ()
  tf_augment = augment_lib.build_augment(list(config.data.augment), conditioned) \
      if config.data.augment else None
  policy = config.diffaug
  step_augment = (lambda x, key: diffaug.diff_augment(x, key, policy)) if policy else None
  return tf_augment, step_augment


class SampleWriter:
  """Draws the fixed attribute grids with the EMA generator; TensorBoard images + PNG files."""

  def __init__(self, config, vocabulary, workdir, writer, prior=None, sampler=None):
    """prior: the training split's LabelPrior; attributes a grid leaves free are drawn from it
    once (fixed for the run, as the sampling tools' default does), else the model's 'unspecified'.
    sampler: the run's EmaSampler (default: a new one)."""
    self.config, self.writer, self.workdir = config, writer, workdir
    self.sampler = sampler or sampler_lib.EmaSampler(config, vocabulary.num_classes)
    if not config.model.conditional:
      vocabulary = vocabulary.from_dict({})
    self.grids = samples.grid_specs(vocabulary, tuple(config.sample.grid_attributes))
    if prior is not None:
      rng = np.random.default_rng([config.seed, 3])
      self.grids = [dataclasses.replace(g, labels=prior.fill(g.labels, rng)) for g in self.grids]
    key = jax.random.PRNGKey(config.seed + 1)
    self.latents = [jax.random.normal(jax.random.fold_in(key, i),
                                      (g.rows * g.cols, self.sampler.latent_dim))
                    for i, g in enumerate(self.grids)]

  def write(self, step: int, state) -> List[str]:
    """Draws the grids; `state` must hold its standing statistics (sampler.with_standing_stats)."""
    images, paths = {}, []
    for grid, z in zip(self.grids, self.latents):
      out = self.sampler.generate(state, z, grid.labels)
      tiled = samples.tile(samples.to_uint8(out), grid.rows, grid.cols)
      images[f'samples/{grid.name}'] = tiled[None]
      if jax.process_index() == 0:
        paths.append(samples.save_png(tiled, rundir.sample_grid_path(self.workdir, grid.name,
                                                                     step)))
    self.writer.write_images(step, images)
    return paths


def _trained_vocabulary(workdir: str) -> Optional[Vocabulary]:
  """The vocabulary saved with a run's checkpoints (None if it has none)."""
  try:
    return Vocabulary.load(workdir)
  except FileNotFoundError:
    return None


def _mean_metrics(history: List[Dict]) -> Dict[str, float]:
  stacked = jax.device_get(history)
  return {k: float(np.mean([m[k] for m in stacked])) for k in stacked[0]}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_config_change: bool = False):
  """Trains (resuming from the workdir's latest intact checkpoint) and returns the final state.

  Only process 0 holds the workdir lock; with allow_config_change a run may resume checkpoints
  written under a config whose model/data fields differ.
  """
  validate_config(config)
  tf.config.set_visible_devices([], 'GPU')  # tf.data only; keep TF off the accelerators.
  lock = workdir_lib.WorkdirLock(workdir)
  if jax.process_index() == 0:
    lock.acquire()
  try:
    return _train(config, workdir, allow_config_change, lock)
  finally:
    lock.release()


def _train(config, workdir, allow_config_change, lock):
  writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() != 0)

  checkpointer = checkpoint_lib.Checkpointer(workdir, config.max_checkpoints_to_keep)
  # A resumed run keeps the attributes it was trained with (and the dataset version that has
  # them): its checkpoints, vocabulary and label distribution must not be rewritten for others.
  trained_with = _trained_vocabulary(workdir) if checkpointer.steps() else None
  spec = pipeline.open_dataset(config.data.name, config.data.data_dir, config.data.attributes,
                               expected=trained_with)
  vocabulary = spec.vocabulary
  if trained_with is not None and config.model.conditional and vocabulary != trained_with:
    raise ValueError(f'The dataset {config.data.name!r} now has attributes '
                     f'{dict(vocabulary.attributes)}, but the checkpoints in {workdir!r} were '
                     f'trained with {dict(trained_with.attributes)}. Resume with the data they '
                     'were trained on (e.g. pin its version: --config.data.name=NAME:VERSION) or '
                     'start a new workdir.')
  num_classes = vocabulary.num_classes
  logging.info('Dataset %s: %d training images; attributes %s', config.data.name,
               spec.num_examples(config.data.train_split),
               {n: len(v) for n, v in vocabulary.attributes})
  if jax.process_index() == 0:
    workdir_lib.check_and_save_config(workdir, config, allow_config_change,
                                      has_checkpoint=bool(checkpointer.steps()))
    vocabulary.save(workdir)
  # Every process reads the same split, so all of them hold the same distribution; one writes it.
  prior = label_prior_lib.ensure(workdir, spec, config.data.train_split,
                                 write=jax.process_index() == 0) \
      if config.model.conditional and vocabulary.names else None

  generator, discriminator = build_models(config, num_classes, axis_name=parallel.AXIS)
  (g_tx, g_schedule), (d_tx, d_schedule) = optim.build_optimizers(config)
  state = state_lib.create_state(config, generator, discriminator, g_tx, d_tx, num_classes,
                                 config.seed)
  restored, restored_step = checkpointer.restore(state)
  if restored is not None:
    state = restored
    logging.info('Resumed from the checkpoint at step %d in %s.', restored_step,
                 checkpointer.directory)
  state = parallel.replicated(state)
  start_step = int(state.step)
  logging.info('G: %d parameters, D: %d parameters.', state_lib.count_params(state.g_params),
               state_lib.count_params(state.d_params))

  tf_augment, step_augment = make_augment_fns(config, vocabulary)
  train_step = steps.make_train_step(config, generator, discriminator, g_tx, d_tx, g_schedule,
                                     d_schedule, num_classes, augment_fn=step_augment,
                                     attribute_names=vocabulary.names)
  p_train_step = steps.pmap_train_step(train_step)
  batches = parallel.prefetch_to_devices(pipeline.sharded_batches(pipeline.train_dataset(
      spec, config, start_step=start_step, augment_fn=tf_augment)), config.data.prefetch)
  sampler = sampler_lib.EmaSampler(config, num_classes)  # Off the pmap axis of training's G.
  grids = SampleWriter(config, vocabulary, workdir, writer, prior, sampler)
  evaluator = evaluator_lib.Evaluator(config, spec, workdir, prior, sampler) \
      if config.eval_every_steps else None
  best = BestCheckpoint.for_config(workdir, config) if evaluator else None

  if start_step == 0:
    writer.write_hparams({k: v if isinstance(v, (int, float, str, bool)) else str(v)
                          for k, v in workdir_lib.flatten(config).items()})
  hooks = []
  if jax.process_index() == 0:
    hooks.append(periodic_actions.ReportProgress(num_train_steps=config.num_train_steps,
                                                 writer=writer, every_secs=30))

  def every(n, step):
    return n and step % n == 0

  history, input_wait, interval_start = [], 0.0, time.perf_counter()
  step = start_step
  with metric_writers.ensure_flushes(writer), preemption.PreemptionWatcher() as watcher:
    for step in range(start_step + 1, config.num_train_steps + 1):
      t = time.perf_counter()
      batch = next(batches)
      input_wait += time.perf_counter() - t
      new_state, metrics = p_train_step(state, batch)
      if not bool(metrics['finite']):
        raise DivergenceError(_divergence_message(step, metrics, checkpointer.latest_step()))
      state = new_state
      history.append(metrics)
      for hook in hooks:
        hook(step)
      if every(config.log_every_steps, step) or step == config.num_train_steps:
        scalars = _mean_metrics(history)
        scalars.pop('finite')
        elapsed = time.perf_counter() - interval_start
        scalars['input_wait_fraction'] = input_wait / max(elapsed, 1e-9)
        writer.write_scalars(step, scalars)
        history, input_wait, interval_start = [], 0.0, time.perf_counter()
        lock.heartbeat()
      preempted = watcher.should_stop(step)
      is_last = step == config.num_train_steps or preempted
      if every(config.sample_every_steps, step) or every(config.checkpoint_every_steps, step) \
          or is_last:
        # Placed like the step's outputs, or the next step would compile again.
        state = parallel.replicated(sampler.with_standing_stats(state))
      if every(config.sample_every_steps, step) or is_last:
        grids.write(step, state)
      if every(config.checkpoint_every_steps, step) or is_last:
        checkpointer.save(step, state)
      if evaluator and (every(config.eval_every_steps, step) or step == config.num_train_steps):
        eval_scalars = evaluator.evaluate(state)
        writer.write_scalars(step, eval_scalars)
        best.update(step, state, eval_scalars)
      if preempted:
        logging.warning('Preempted: saved the checkpoint of step %d; rerun the same command to '
                        'resume.', step)
        break
  if start_step >= config.num_train_steps:
    logging.info('Nothing to do: the checkpoint is at step %d >= num_train_steps=%d.', start_step,
                 config.num_train_steps)
  checkpointer.close()
  if best:
    best.close()
  writer.flush()
  return state


def _divergence_message(step, metrics, last_checkpoint):
  values = {k: float(v) for k, v in jax.device_get(metrics).items() if k != 'finite'}
  bad = [k for k, v in values.items() if not np.isfinite(v)] or ['generator/discriminator parameters']
  return (f'Training diverged at step {step}: non-finite {", ".join(bad)} (metrics: {values}). '
          f'The update was not applied; the last good checkpoint is step {last_checkpoint}. '
          'Lower the learning rates (--config.optim.d_lr / g_lr), try --config.loss=hinge with '
          "--config.model.d_norm=spectral, or resume from that checkpoint with another seed.")
