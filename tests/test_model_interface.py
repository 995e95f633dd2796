"""The model interface (gan/models/interface.py): every tool works through it, for every model.

Each tool (gan.sample with sweep / interpolate / SeFa directions and edits, gan.invert, the
training's sample grids, the evaluator, the benchmark's train step) runs on tiny `dcgan` and
`biggan` runs and on a tiny `fake_iface` model defined here, whose parameters share no name with
either: if a tool looked up a model's own names, the fake would fail. A model that lacks part of
the interface is refused by build_models with an error naming what is missing.
"""
import os
import shutil
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from gan import invert as invert_cli
from gan import rundir, samples, train
from gan import sample as sample_cli
from gan.control import generation, inversion, loading, sefa
from gan.data import pipeline
from gan.evaluation import evaluator as evaluator_lib
from gan.models import DISCRIMINATORS, GENERATORS, biggan, build_models, interface
from tests.conftest import tiny_config
from tests.test_evaluate import EVAL_OVERRIDES

FAKE = 'fake_iface'


class FakeGenerator(nn.Module):
  """z and the summed attribute embeddings each make a 4x4 map; BatchNorm, nearest upsampling to
  the resolution, a 3x3 conv to RGB. Soft labels mix the embedding rows, as the interface says."""
  latent_dim: int
  resolution: int
  num_classes: Sequence[int] = ()
  bn_momentum: float = 0.9
  axis_name: Optional[str] = None

  def latent_weight(self, variables):
    return np.asarray(variables['params']['from_z']['kernel'], np.float64)

  @nn.compact
  def __call__(self, z, labels, train: bool = True):
    h = nn.Dense(4 * 4 * 8, name='from_z')(z)
    for a, n in enumerate(self.num_classes):
      table = self.param(f'table_{a}', nn.initializers.normal(1.0), (n + 1, 4 * 4 * 8))
      h = h + (labels[a] @ table[:n] if isinstance(labels, tuple) else table[labels[:, a]])
    h = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                     axis_name=self.axis_name if train else None, name='stats')(
                         h.reshape(z.shape[0], 4, 4, 8))
    r = self.resolution
    h = jax.image.resize(nn.relu(h), (z.shape[0], r, r, 8), 'nearest')
    return jnp.tanh(nn.Conv(3, (3, 3), name='rgb')(h))


class FakeDiscriminator(nn.Module):
  """Two strided convs (each sown as a feature map) and a linear judge; ignores the labels."""
  resolution: int
  num_classes: Sequence[int] = ()

  @nn.compact
  def __call__(self, x, labels, train: bool = True):
    h = x
    for i, channels in enumerate((8, 16)):
      h = nn.Conv(channels, (3, 3), strides=2, name=f'stage{i}')(h)
      self.sow(interface.INTERMEDIATES, interface.FEATURES, h)
      h = nn.leaky_relu(h, 0.2)
    return nn.Dense(1, name='judge')(h.reshape(h.shape[0], -1))[:, 0]


def _register(name, generator=None, discriminator=None):
  """Registers factories (the registry's entry form) for test models, once per process."""
  if generator and name not in GENERATORS:
    GENERATORS.register(name)(lambda m, r, nc, axis: generator(
        latent_dim=m.latent_dim, resolution=r, num_classes=nc, axis_name=axis))
  if discriminator and name not in DISCRIMINATORS:
    DISCRIMINATORS.register(name)(lambda m, r, nc, axis: discriminator(resolution=r,
                                                                        num_classes=nc))


_register(FAKE, FakeGenerator, FakeDiscriminator)

MODELS = ('dcgan', 'biggan', FAKE)
OVERRIDES = {
    'dcgan': {},
    'biggan': {'model.generator': 'biggan', 'model.discriminator': 'biggan', 'model.ch': 4,
               'loss': 'hinge'},
    FAKE: {'model.generator': FAKE, 'model.discriminator': FAKE, 'model.aux_classifier': False,
           'aux_classifier_weight': 0.0},
}


@pytest.fixture(scope='module')
def run_dirs(trained_run_dir, tfds_dir, tmp_path_factory):
  """{model: workdir}: the shared tiny dcgan run; tiny biggan and fake runs trained alike."""
  dirs = {'dcgan': trained_run_dir}
  for model in ('biggan', FAKE):
    dirs[model] = str(tmp_path_factory.mktemp(f'{model}_run'))
    config = tiny_config(**{'data.data_dir': tfds_dir, 'num_train_steps': 2,
                            'sample_every_steps': 0, **OVERRIDES[model]})
    train.train_and_evaluate(config, dirs[model])
  return dirs


@pytest.fixture(scope='module', params=MODELS)
def model_run(request, run_dirs):
  """(model name, workdir, loaded Run)."""
  workdir = run_dirs[request.param]
  return request.param, workdir, loading.load_run(workdir, 'latest')


# ---- The contract itself ----

class Incomplete(nn.Module):
  """A generator without latent_dim, bn_momentum, latent_weight."""
  resolution: int = 16
  num_classes: Sequence[int] = ()
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, z, labels, train=True):
    return z


class NoResolution(nn.Module):
  num_classes: Sequence[int] = ()

  @nn.compact
  def __call__(self, x, labels, train=True):
    return x


def test_a_model_missing_the_interface_is_refused_naming_what_is_missing():
  if 'iface_incomplete' not in GENERATORS:
    GENERATORS.register('iface_incomplete')(
        lambda m, r, nc, axis: Incomplete(resolution=r, num_classes=nc, axis_name=axis))
    DISCRIMINATORS.register('iface_no_resolution')(lambda m, r, nc, axis: NoResolution(nc))
  config = tiny_config(**{**OVERRIDES[FAKE], 'model.generator': 'iface_incomplete'})
  with pytest.raises(TypeError) as error:
    build_models(config, (3,))
  message = str(error.value)
  for missing in ("generator 'iface_incomplete' (Incomplete)", "field 'latent_dim'",
                  "field 'bn_momentum'", 'method latent_weight()', 'gan/models/interface.py'):
    assert missing in message, message
  assert "'resolution'" not in message  # Only what is missing is named.
  config = tiny_config(**{**OVERRIDES[FAKE], 'model.discriminator': 'iface_no_resolution'})
  with pytest.raises(TypeError, match=r"discriminator 'iface_no_resolution'.*missing field "
                     r"'resolution'"):
    build_models(config, (3,))
  interface.check_generator(FakeGenerator)  # Classes can be checked too; complete ones pass.
  with pytest.raises(TypeError, match='method latent_weight'):
    interface.check_generator(Incomplete)


def test_built_models_must_agree_with_the_config():
  config = tiny_config(**OVERRIDES[FAKE])
  g, d = build_models(config, (3,))
  assert (g.latent_dim, g.resolution, d.resolution) == (16, 16, 16)
  with pytest.raises(ValueError, match='model.latent_dim=16'):
    interface.check_built(g.clone(latent_dim=8), d, 16, 16)
  with pytest.raises(ValueError, match='discriminator works at 32 px.*data.resolution=16'):
    interface.check_built(g, d.clone(resolution=32), 16, 16)


def test_a_discriminator_that_sows_nothing_is_a_clear_error():
  class Silent(nn.Module):
    resolution: int = 8

    @nn.compact
    def __call__(self, x, labels, train=True):
      return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]

  x = jnp.zeros((2, 8, 8, 3))
  d = Silent()
  variables = d.init(jax.random.PRNGKey(0), x, None)
  with pytest.raises(ValueError, match=r"self.sow\('intermediates', 'features', h\)"):
    interface.d_features(d, variables, x, None)


def _variant(model, conditional=True, every_layer=False, d_norm='batch'):
  return tiny_config(**OVERRIDES[model], **{'model.conditional': conditional,
                                            'model.latent_in_every_layer': every_layer,
                                            'model.d_norm': d_norm})


@pytest.mark.parametrize('model,conditional,every_layer,d_norm', [
    ('dcgan', True, False, 'batch'), ('dcgan', True, True, 'spectral'),
    ('dcgan', False, True, 'none'), ('dcgan', False, False, 'spectral'),
    ('biggan', True, False, ''), ('biggan', False, False, ''), (FAKE, True, False, ''),
    (FAKE, False, False, '')])
def test_models_implement_the_interface(model, conditional, every_layer, d_norm):
  """latent_weight's shape, D's named features, and soft one-hot labels == the int labels."""
  config = _variant(model, conditional, every_layer, d_norm or 'batch')
  num_classes = (3, 2) if conditional else ()
  g, d = build_models(config, num_classes)
  n, latent = 4, config.model.latent_dim
  z = jax.random.normal(jax.random.PRNGKey(1), (n, latent))
  labels = np.array([[0, 1], [2, 0], [1, 1], [2, 1]], np.int32)[:, :len(num_classes)]
  g_vars = g.init(jax.random.PRNGKey(0), z, labels, train=False)
  images = jnp.zeros((n, 16, 16, 3))
  d_vars = d.init(jax.random.PRNGKey(0), images, labels, train=False)

  if model == 'biggan':  # Spectral norm's sigma as a train step leaves it (not its initial 1).
    params = dict(g_vars['params'], linear={'kernel': 3.0 * g_vars['params']['linear']['kernel'],
                                            'bias': g_vars['params']['linear']['bias']})
    g_vars = {'params': params, 'batch_stats': g_vars['batch_stats']}
    _, stats = g.apply(g_vars, z, labels, train=True, mutable=['batch_stats'])
    g_vars = {'params': g_vars['params'], 'batch_stats': stats['batch_stats']}
  weight = interface.latent_weight(g, g_vars)
  assert weight.shape[0] == latent
  if model == 'dcgan':  # The first layer's 4*4*(2 * width) outputs, plus each CBN's gain and bias.
    first = 4 * 4 * 2 * config.model.g_width
    assert weight.shape[1] == first + (2 * (8 + 16) if every_layer else 0)
  if model == 'biggan':  # z's first chunk feeds only 'linear', applied as kernel / sigma.
    chunk = biggan.z_chunks(latent, 3)[0]
    sigma = float(g_vars['batch_stats']['sn_linear']['linear/kernel/sigma'])
    assert abs(sigma - 1.0) > 1e-3
    kernel = np.asarray(g_vars['params']['linear']['kernel'])
    np.testing.assert_allclose(weight[:chunk, :kernel.shape[1]], kernel[:chunk] / sigma,
                               rtol=1e-5)
    assert np.all(weight[chunk:, :kernel.shape[1]] == 0)
    assert np.all(weight[:chunk, kernel.shape[1]:] == 0)
  dirs, _ = sefa.sefa_directions(g, g_vars, 3)
  np.testing.assert_allclose(dirs @ dirs.T, np.eye(3), atol=1e-5)

  features = interface.d_features(d, d_vars, images, labels)
  assert [f.shape[:3] for f in features] == [(n, 16 // 2 ** (i + 1), 16 // 2 ** (i + 1))
                                             for i in range(len(features))]
  assert len(features) == {'dcgan': 2, 'biggan': 3, FAKE: 2}[model]

  hard = g.apply(g_vars, z, labels, train=False)
  assert hard.shape == (n, 16, 16, 3)
  soft = tuple(jax.nn.one_hot(labels[:, a], k) for a, k in enumerate(num_classes))
  np.testing.assert_allclose(g.apply(g_vars, z, soft, train=False), hard, atol=1e-5)
  # The standing-statistics clone updates BatchNorm to exactly the batch's statistics.
  _, stats = interface.standing_stats_generator(g).apply(g_vars, z, labels, train=True,
                                                         mutable=['batch_stats'])
  assert jax.tree_util.tree_structure(stats['batch_stats']) == \
      jax.tree_util.tree_structure(g_vars['batch_stats'])


# Parameter names each model keeps to itself (quoted as they would be looked up).
OWN_NAMES = {
    'dcgan.py': ("'project'", "'norm_", "'sn_down", "'down_", "'up_"),
    'biggan.py': ("'linear'", "'cbn_", "'sn_gain", "'sn_bias", "'sn_linear", "block_{"),
}


def test_model_names_stay_inside_their_modules():
  """No tool reads a model's parameter names; they are its own module's business."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  offenders = []
  for folder in ('gan', 'experiments'):
    for dirpath, _, files in os.walk(os.path.join(root, folder)):
      for path in (os.path.join(dirpath, f) for f in files if f.endswith('.py')):
        with open(path) as handle:
          text = handle.read()
        for owner, names in OWN_NAMES.items():
          if path != os.path.join(root, 'gan', 'models', owner):
            offenders += [f'{os.path.relpath(path, root)}: {n}' for n in names if n in text]
  assert not offenders, offenders


# ---- Every tool on every model ----

def test_sampling_sweeps_interpolation_and_sefa(model_run, tmp_path, capsys):
  model, workdir, run = model_run
  r, d = run.resolution, run.latent_dim
  images, z, labels = generation.sample(run, {}, num=3, seed=0)
  assert images.shape == (3, r, r, 3) and z.shape == (3, d)
  assert np.all(np.abs(images) <= 1.0) and np.std(images) > 0

  attribute = run.vocabulary.names[1]
  swept, values = generation.sweep(run, attribute, num=2, seed=0)
  assert swept.shape == (2, len(values), r, r, 3)
  assert np.mean(np.abs(swept[0, 0] - swept[0, 1])) > 1e-4  # the attribute reaches the image

  frames = generation.interpolate(run, 1, 2, frames=4)
  first, _, _ = generation.sample(run, {}, num=1, seed=1)
  np.testing.assert_allclose(frames[0], first[0], atol=1e-5)

  dirs, eigenvalues = generation.directions(run)
  assert dirs.shape == (d, d) and np.all(np.diff(eigenvalues) <= 1e-9)
  np.testing.assert_allclose(dirs @ dirs.T, np.eye(d), atol=1e-5)
  previews, _ = generation.direction_previews(run, 2, [-2.0, 0.0, 2.0])
  assert previews.shape == (2, 3, r, r, 3)
  edited, original = generation.edit(run, 0, 3.0, num=2)
  assert np.mean(np.abs(edited - original)) > 1e-4

  out = str(tmp_path / 'sweep.png')
  assert sample_cli.main([f'--workdir={workdir}', '--checkpoint', 'latest', '--sweep', attribute,
                          '--num', '2', '--out', out]) == 0
  assert os.path.exists(out) and 'wrote' in capsys.readouterr().out


def test_training_wrote_sample_grids(model_run):
  model, workdir, run = model_run
  grids = os.listdir(os.path.join(workdir, rundir.SAMPLES))
  specs = samples.grid_specs(run.vocabulary, tuple(run.config.sample.grid_attributes))
  for spec in specs:
    path = rundir.sample_grid_path(workdir, spec.name, run.step)
    assert os.path.basename(path) in grids, grids
    w, h = Image.open(path).size
    cell = run.resolution + 2
    assert ((h - 2) // cell, (w - 2) // cell) == (spec.rows, spec.cols)


def test_inversion(model_run, tmp_path, capsys):
  model, workdir, run = model_run
  z = np.random.default_rng(3).standard_normal((1, run.latent_dim)).astype(np.float32)
  labels = np.zeros((1, len(run.num_classes)), np.int32)
  target = run.generate(z, labels)[0]
  config = inversion.InversionConfig(steps=12, restarts=2, learning_rate=0.1)
  result = inversion.invert(run, np.asarray(target), config=config)
  assert result.z.shape == (run.latent_dim,) and result.reconstruction.shape == target.shape
  assert result.psnr > result.initial_psnr, (result.psnr, result.initial_psnr)
  assert np.all(np.isfinite(result.loss_history))

  photo = str(tmp_path / 'photo.png')
  Image.fromarray(samples.to_uint8(target)).save(photo)
  out = str(tmp_path / 'inverted.png')
  assert invert_cli.main([f'--workdir={workdir}', '--checkpoint', 'latest', '--image', photo,
                          '--steps', '4', '--restarts', '2', '--out', out]) == 0
  assert 'PSNR' in capsys.readouterr().out and os.path.exists(out)


@pytest.fixture(scope='module')
def classifier_dir(tmp_path_factory):
  """One evaluation classifier for both models (it depends on the data, not on the model)."""
  return str(tmp_path_factory.mktemp('iface_classifier'))


def test_evaluator(model_run, classifier_dir, tmp_path):
  model, workdir, run = model_run
  config = rundir.load_config(workdir)
  for key, value in {**EVAL_OVERRIDES, 'eval.classifier_dir': classifier_dir}.items():
    section, field = key.split('.')
    config[section][field] = value
  spec = pipeline.open_dataset(config.data.name, config.data.data_dir)
  workdir_copy = str(tmp_path / 'run')  # The evaluator writes its label prior into the workdir.
  shutil.copytree(workdir, workdir_copy)
  scalars = evaluator_lib.Evaluator(config, spec, workdir_copy).evaluate(run.state)
  for key in ('eval/fid', 'eval/control_acc/mean', 'eval/diversity/pixel'):
    assert np.isfinite(scalars[key]), (key, scalars)


def test_benchmark_step(model_run):
  from experiments import benchmark
  model, _, run = model_run
  step, gflop = benchmark.make_train_step(run.config, run.num_classes, 16)
  step()
  assert np.isnan(gflop) or gflop > 0
