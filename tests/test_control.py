"""Control tools on a tiny trained run: sample by attribute, sweep, interpolate, SeFa, inversion."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from gan import checkpoint, rundir
from gan import invert as invert_cli
from gan import sample as sample_cli
from gan.control import generation, inversion, latents, loading, output, postprocess, sefa
from gan.data import pipeline
from gan.data.vocab import Vocabulary
from gan.evaluation import metrics
from gan.models.dcgan import DCGANGenerator
from tests.conftest import assert_clean_error, run_tool

CELL = 16 + 2  # Tiny runs are 16x16; grids pad each cell by 2 pixels.


@pytest.fixture(scope='module')
def run_dir(trained_run_dir):
  """The session's tiny trained run (tests/conftest.py): checkpoints at steps 2 and 4."""
  return trained_run_dir


@pytest.fixture(scope='module')
def run(run_dir):
  return loading.load_run(run_dir, 'latest')


def _grid_cells(path):
  w, h = Image.open(path).size
  return (h - 2) // CELL, (w - 2) // CELL


# ---- Loading a run ----

def test_load_run_restores_config_and_picks_checkpoints(run_dir, run, tmp_path):
  assert run.step == 4 and run.checkpoint == 'latest'
  assert run.config.sample.grid_attributes == ('category', 'colour')  # JSON lists -> tuples.
  assert run.config.data.attributes is None and run.config.model.latent_dim == 16
  assert loading.load_run(run_dir, 2).step == 2
  assert loading.load_run(run_dir, 'best').checkpoint == 'latest'  # No best checkpoint yet.
  with pytest.raises(ValueError, match=r'available steps: \[2, 4\]'):
    loading.load_run(run_dir, 3)
  with pytest.raises(ValueError, match='best, latest or a step number'):
    loading.load_run(run_dir, 'newest')

  # Once evaluation has kept a best checkpoint, tools use it by default.
  copy = str(tmp_path / 'with_best')
  shutil.copytree(run_dir, copy)
  best_dir = checkpoint.checkpoint_dir(copy, rundir.BEST_CHECKPOINT)
  shutil.copytree(os.path.join(checkpoint.checkpoint_dir(copy), '2'), os.path.join(best_dir, '2'))
  best = loading.load_run(copy)
  assert (best.checkpoint, best.step) == ('best', 2)
  assert loading.load_run(copy, 'latest').step == 4

  # A damaged latest checkpoint: the tools fall back to an older one and move nothing on disk.
  latest = os.path.join(checkpoint.checkpoint_dir(copy), '4')
  for root, _, files in os.walk(os.path.join(latest, 'state')):
    for name in files:
      open(os.path.join(root, name), 'wb').close()
  assert loading.load_run(copy, 'latest').step == 2
  assert os.path.isdir(latest)

  with pytest.raises(FileNotFoundError, match='workdir of a productgan training run'):
    loading.load_run(str(tmp_path / 'nothing'))


def test_vocabulary_round_trip(run_dir, run, tfds_dir):
  spec = pipeline.open_dataset('synthetic_products/tiny', tfds_dir, prepare=False)
  saved = Vocabulary.load(run_dir)
  assert saved == spec.vocabulary == run.vocabulary
  assert Vocabulary.from_json(saved.to_json()) == saved
  attrs = saved.parse(['category=handbag', 'color=RED'])  # Alias and case are forgiven.
  labels = saved.encode(attrs)
  assert saved.decode(labels) == {'category': 'handbag', 'colour': 'red', 'pattern': 'any',
                                  'material': 'any'}
  assert labels[2] == saved.num_classes[2]  # Left out = unspecified.


# ---- Sampling by attribute ----

def test_sample_command_writes_grid_files_and_timing(run_dir, tmp_path, capsys):
  out, out_dir = str(tmp_path / 'red_bags.png'), str(tmp_path / 'each')
  code = sample_cli.main([f'--workdir={run_dir}', '--attr', 'category=handbag', '--attr',
                          'colour=red', '--num', '6', '--seed', '1', '--truncation', '0.7',
                          '--out', out, '--out-dir', out_dir, '--timing', '--checkpoint', 'latest'])
  assert code == 0
  assert _grid_cells(out) == (2, 3)  # 6 images -> 3 columns, 2 rows.
  files = sorted(os.listdir(out_dir))
  assert files == ['attributes.json'] + [f'sample_{i:03d}.png' for i in range(6)]
  assert Image.open(os.path.join(out_dir, 'sample_000.png')).size == (16, 16)
  assert 'images in' in capsys.readouterr().out

  code = sample_cli.main([f'--workdir={run_dir}', '--num', '2', '--postprocess', 'sharpen,upscale2',
                          '--out-dir', str(tmp_path / 'big')])
  assert code == 0
  assert Image.open(tmp_path / 'big' / 'sample_000.png').size == (32, 32)


def test_sample_labels_and_seeds(run):
  vocab = run.vocabulary
  asked = {'category': 'mug', 'colour': 'navy'}
  images, z, labels = generation.sample(run, asked, num=4, seed=3)
  assert images.shape == (4, 16, 16, 3) and np.all(np.abs(images) <= 1)
  # Default 'auto' = 'catalogue' (the run saved its label distribution): the asked values stay,
  # the pattern is drawn among the patterns the catalogue's navy mugs have.
  assert generation.resolve_any_mode(run) == 'catalogue'
  np.testing.assert_array_equal(labels[:, :2], np.tile(vocab.encode(asked)[:2], (4, 1)))
  combos = run.label_prior.combinations
  navy_mugs = combos[(combos[:, 0] == labels[0, 0]) & (combos[:, 1] == labels[0, 1])]
  assert set(labels[:, 2]) <= set(navy_mugs[:, 2])
  # Latent i and label i of a seed do not depend on how many are drawn.
  first, z1, labels1 = generation.sample(run, asked, num=1, seed=3)
  np.testing.assert_array_equal(z1[0], z[0])
  np.testing.assert_array_equal(labels1[0], labels[0])
  np.testing.assert_allclose(first[0], images[0], atol=1e-5)
  # The model's own "unspecified" label, on request.
  null = generation.make_labels(run, asked, 4, seed=3, any_mode='unspecified')
  np.testing.assert_array_equal(null, np.tile(vocab.encode(asked), (4, 1)))
  # 'random' any-mode fills unspecified attributes with real values, keeps the given ones.
  random_labels = generation.make_labels(run, {'colour': 'navy'}, 64, seed=0, any_mode='random')
  assert np.all(random_labels < np.asarray(vocab.num_classes))
  assert np.all(random_labels[:, 1] == vocab.value_index('colour', 'navy'))
  assert len(np.unique(random_labels[:, 0])) > 1


def test_catalogue_mode_needs_the_label_distribution(run_dir, tmp_path, capsys):
  """An older run without label_distribution.json: auto falls back; --any=catalogue says how to fix."""
  old = tmp_path / 'old_run'
  shutil.copytree(run_dir, old, ignore=shutil.ignore_patterns('label_distribution.json'))
  old_run = loading.load_run(str(old), 'latest')
  assert old_run.label_prior is None
  assert generation.resolve_any_mode(old_run) == 'unspecified'  # Trained with attribute dropout.
  code = sample_cli.main([f'--workdir={old}', '--any', 'catalogue', '--out', str(tmp_path / 'x.png')])
  assert code == 2
  err = capsys.readouterr().err
  assert '--any=catalogue needs the label distribution' in err and 'gan.evaluate' in err
  (old / 'label_distribution.json').write_text('{"attributes": ["category"')  # Damaged.
  code = sample_cli.main([f'--workdir={old}', '--out', str(tmp_path / 'x.png')])
  assert code == 2
  assert 'is damaged' in capsys.readouterr().err
  assert not os.path.exists(tmp_path / 'x.png')


def test_sample_command_reports_the_drawn_attributes(run_dir, tmp_path, capsys):
  out_dir = tmp_path / 'drawn'
  code = sample_cli.main([f'--workdir={run_dir}', '--attr', 'colour=red', '--num', '3',
                          '--out-dir', str(out_dir)])
  assert code == 0
  out = capsys.readouterr().out
  with open(out_dir / 'attributes.json') as f:
    drawn = json.load(f)
  assert sorted(drawn) == ['sample_000', 'sample_001', 'sample_002']
  for name, attrs in drawn.items():
    assert attrs['colour'] == 'red' and attrs['category'] != 'any' and attrs['pattern'] != 'any'
    assert f"{name}: category={attrs['category']} pattern={attrs['pattern']}" in out


@pytest.mark.parametrize('args,message', [
    (['--attr', 'shape=round'], "Unknown attribute 'shape'. This model is conditioned on: "
                                'category, colour, pattern'),
    (['--attr', 'colour=blu'], "Unknown value 'blu' for attribute 'colour'. Valid values: red,"),
    (['--attr', 'colour'], 'must be written as attribute=value'),
    (['--sweep', 'size'], "Unknown attribute 'size'"),
    (['--postprocess', 'blur'], 'Valid postprocess op names: autocontrast, denoise'),
    (['--checkpoint', '99'], r'available steps: [2, 4]'),
    (['--truncation', '-1'], 'truncation must be a positive threshold'),
    (['--interpolate', '3'], 'two seeds as SEED_A,SEED_B'),
    (['--direction', '16'], r'--direction must be in [0, 15]'),
])
def test_bad_input_is_a_clear_error(run_dir, tmp_path, capsys, args, message):
  code = sample_cli.main([f'--workdir={run_dir}', '--out', str(tmp_path / 'x.png')] + args)
  err = capsys.readouterr().err
  assert code == 2
  assert message in err, err
  assert not os.path.exists(tmp_path / 'x.png')


def test_python_m_exits_nonzero_without_traceback(run_dir, tmp_path):
  proc = run_tool(['-m', 'gan.sample', f'--workdir={run_dir}', '--attr', 'colour=mauve',
                   '--out', str(tmp_path / 'x.png')])
  assert_clean_error(proc, 2, "Unknown value 'mauve'")


# ---- Truncation ----

def test_truncation_reduces_diversity(run):
  spreads, image_spreads = [], []
  for t in (None, 1.5, 0.7, 0.3):
    z = latents.seed_latents(0, 64, run.latent_dim, t)
    if t:
      assert np.max(np.abs(z)) <= t
    spreads.append(metrics.mean_pairwise_distance(z))
    images, _, _ = generation.sample(run, {'category': 'lamp'}, num=64, seed=0, truncation=t)
    image_spreads.append(metrics.mean_pairwise_distance(images))
  assert spreads == sorted(spreads, reverse=True), spreads
  assert image_spreads[-1] < image_spreads[0], image_spreads
  with pytest.raises(ValueError, match='positive threshold'):
    latents.check_truncation(-0.5)


# ---- Same product, other attributes ----

def test_sweep_keeps_the_latent_fixed(run, run_dir, tmp_path):
  vocab = run.vocabulary
  images, values = generation.sweep(run, 'colour', {'category': 'sneaker'}, num=2, seed=5)
  assert values == vocab.values('colour') and images.shape[:2] == (2, len(values))
  z = latents.seed_latents(5, 2, run.latent_dim)
  drawn = generation.make_labels(run, {'category': 'sneaker'}, 2, seed=5)  # pattern: catalogue
  assert np.all(drawn[:, 2] < vocab.num_classes[2])
  for row in range(2):
    for v in (0, 4):
      labels = drawn[row:row + 1].copy()
      labels[:, 1] = v
      expected = np.asarray(run.generate(z[row:row + 1], labels))[0]
      np.testing.assert_allclose(images[row, v], expected, atol=1e-5)
  assert not np.allclose(images[0, 0], images[0, 1])  # The colour changes the image...
  assert not np.allclose(images[0, 0], images[1, 0])  # ...and so does the latent.
  with pytest.raises(ValueError, match='do not also fix it'):
    generation.sweep(run, 'color', {'colour': 'red'})

  out = str(tmp_path / 'sweep.png')
  assert sample_cli.main([f'--workdir={run_dir}', '--sweep', 'pattern', '--num', '2',
                          '--out', out]) == 0
  assert _grid_cells(out) == (2, len(vocab.values('pattern')))


# ---- Interpolation ----

def test_slerp():
  a, b = latents.seed_latents(1, 1, 16)[0], latents.seed_latents(2, 1, 16)[0]
  path = latents.interpolation_path(a, b, 5)
  np.testing.assert_allclose(path[0], a, atol=1e-5)
  np.testing.assert_allclose(path[-1], b, atol=1e-5)
  norms = np.linalg.norm(path, axis=1)
  np.testing.assert_allclose(norms, np.linspace(norms[0], norms[-1], 5), rtol=1e-4)
  # Equal angular steps along the great circle.
  unit = path / norms[:, None]
  angles = np.arccos(np.clip(np.sum(unit[1:] * unit[:-1], axis=1), -1, 1))
  np.testing.assert_allclose(angles, angles[0], rtol=1e-3)
  np.testing.assert_allclose(latents.slerp(a, a, 0.5), a, atol=1e-5)  # Parallel: no NaN.


def test_interpolate_command_writes_strip_and_gif(run, run_dir, tmp_path):
  out = str(tmp_path / 'path.png')
  assert sample_cli.main([f'--workdir={run_dir}', '--interpolate', '1,2', '--frames', '5',
                          '--out', out]) == 0
  assert _grid_cells(out) == (1, 5)
  gif = Image.open(tmp_path / 'path.gif')
  assert gif.n_frames == 5
  frames = generation.interpolate(run, 1, 2, 5)
  first, _, _ = generation.sample(run, {}, num=1, seed=1)
  np.testing.assert_allclose(frames[0], first[0], atol=1e-5)  # The path starts at seed 1's image.


# ---- SeFa directions ----

def test_sefa_directions_are_orthonormal_and_edit_the_image(run, run_dir, tmp_path, capsys):
  dirs, eigenvalues = generation.directions(run)
  d = run.latent_dim
  assert dirs.shape == (d, d)
  np.testing.assert_allclose(dirs @ dirs.T, np.eye(d), atol=1e-5)
  assert np.all(np.diff(eigenvalues) <= 1e-9)
  # The first direction moves the first layer's output more than any random unit direction.
  assert not run.generator.latent_in_every_layer  # so z's weight is the first layer's alone
  kernel_z = run.generator.latent_weight(run.g_variables)
  assert kernel_z.shape[0] == d
  random_dirs = np.random.default_rng(0).normal(size=(100, d))
  random_dirs /= np.linalg.norm(random_dirs, axis=1, keepdims=True)
  random_gains = np.linalg.norm(random_dirs @ kernel_z, axis=1)
  assert np.linalg.norm(dirs[0] @ kernel_z) >= np.max(random_gains)

  edited, original = generation.edit(run, 0, 3.0, {'category': 'bottle'}, num=3, seed=0)
  assert np.mean(np.abs(edited - original)) > 1e-3
  unchanged, _ = generation.edit(run, 0, 0.0, {'category': 'bottle'}, num=3, seed=0)
  np.testing.assert_allclose(unchanged, original, atol=1e-6)

  out = str(tmp_path / 'directions.png')
  assert sample_cli.main([f'--workdir={run_dir}', '--directions', '3', '--frames', '5',
                          '--out', out]) == 0
  assert _grid_cells(out) == (3, 5)
  assert 'eigenvalue' in capsys.readouterr().out
  out = str(tmp_path / 'edit.png')
  assert sample_cli.main([f'--workdir={run_dir}', '--direction', '1', '--strength', '2',
                          '--num', '4', '--out', out]) == 0
  assert _grid_cells(out) == (2, 4)  # Originals above, edits below.


def test_sefa_stacks_every_layer_that_reads_z():
  """dcgan's latent_in_every_layer: the CBN gain/bias kernels' z rows join the first layer's."""
  rng = np.random.default_rng(0)
  d = 4
  params = {'project': {'kernel': rng.normal(size=(d + 6, 32))},
            'norm_0': {'gamma': {'kernel': rng.normal(size=(d + 6, 8))},
                       'beta': {'kernel': rng.normal(size=(d + 6, 8))}},
            'norm_1': {'gamma': {'kernel': np.zeros((d + 6, 4))},
                       'beta': {'kernel': np.zeros((d + 6, 4))}}}
  first_only = DCGANGenerator(latent_dim=d)
  every = DCGANGenerator(latent_dim=d, latent_in_every_layer=True)
  assert first_only.latent_weight({'params': params}).shape == (d, 32)
  stacked = every.latent_weight({'params': params})
  assert stacked.shape == (d, 32 + 16 + 8)
  np.testing.assert_array_equal(stacked[:, 32:40], params['norm_0']['gamma']['kernel'][:d])
  dirs, _ = sefa.sefa_directions(every, {'params': params})
  np.testing.assert_allclose(dirs @ dirs.T, np.eye(d), atol=1e-6)
  # A large z path in a norm layer changes which direction is strongest.
  params['norm_1']['gamma']['kernel'][0] = 1e3
  top, _ = sefa.sefa_directions(every, {'params': params}, 1)
  assert abs(top[0][0]) > 0.99


# ---- Inversion ----

def _most_distinct_attributes(run, category, material, z):
  """The colour and pattern whose image (of latent z) differs most from every other choice's.

  A 4-step model renders some values alike; those it tells apart, inversion must tell apart too.
  """
  vocab = run.vocabulary
  combos = [(c, p) for c in range(vocab.num_classes[1]) for p in range(vocab.num_classes[2])]
  labels = np.tile(vocab.encode({'category': category, 'material': material}), (len(combos), 1))
  labels[:, [vocab.index_of('colour'), vocab.index_of('pattern')]] = combos
  images = np.asarray(run.generate(np.repeat(z, len(labels), axis=0), labels))
  flat = images.reshape(len(images), -1)
  distances = np.linalg.norm(flat[:, None] - flat[None], axis=-1) + np.eye(len(flat)) * 1e9
  c, p = combos[int(np.argmax(distances.min(axis=1)))]
  return {'category': category, 'colour': vocab.values('colour')[c],
          'pattern': vocab.values('pattern')[p], 'material': material}


def test_inversion_recovers_a_generated_image_and_its_attributes(run):
  vocab = run.vocabulary
  z = latents.seed_latents(11, 1, run.latent_dim)
  truth = _most_distinct_attributes(run, 'handbag', 'leather', z)
  generated = np.asarray(run.generate(z, vocab.encode(truth)[None]))
  photo = output.as_uint8(generated)[0]  # As if saved to PNG and loaded back.
  # 60 steps x 8 restarts found the truth for 3 latents x 2 seeds; 40 x 4 missed 2 of 6 colours.
  config = inversion.InversionConfig(steps=60, restarts=8, seed=0)
  result = inversion.invert(run, photo, known={'category': 'handbag', 'material': 'leather'},
                            config=config)
  assert result.attributes == truth  # Found, not only a better PSNR.
  assert result.loss_history.shape == (60,)
  assert result.loss_history[-1] < result.loss_history[0]
  assert result.psnr > result.initial_psnr + 3.0, (result.psnr, result.initial_psnr)
  mse, psnr = inversion.mse_psnr(result.reconstruction, inversion.to_float(photo))
  assert np.isclose(mse, result.mse) and np.isclose(psnr, result.psnr)
  # The reported reconstruction is what the ordinary generator makes of (z, labels).
  np.testing.assert_allclose(
      np.asarray(run.generate(result.z[None], result.labels[None]))[0], result.reconstruction,
      atol=1e-5)
  navy = inversion.render_variants(run, result, {'colour': 'navy'})
  assert navy.shape == (16, 16, 3) and not np.allclose(navy, result.reconstruction)
  with pytest.raises(ValueError, match='must be 16x16x3'):
    inversion.invert(run, np.zeros((32, 32, 3), np.uint8), config=config)


def test_invert_command(run_dir, tmp_path, capsys):
  photo = str(tmp_path / 'photo.jpg')
  Image.fromarray(np.full((40, 30, 3), (200, 30, 30), np.uint8)).save(photo)  # Not square: padded.
  out, out_dir = str(tmp_path / 'variants.png'), str(tmp_path / 'variants')
  code = invert_cli.main([f'--workdir={run_dir}', '--image', photo, '--attr', 'colour=navy',
                          '--sweep', 'pattern', '--num', '2', '--steps', '6', '--restarts', '2',
                          '--out', out, '--out-dir', out_dir])
  assert code == 0
  stdout = capsys.readouterr().out
  assert 'PSNR' in stdout and 'category=' in stdout
  cells = 2 + 1 + 4 + 2  # Photo, reconstruction, navy, 4 patterns, 2 jittered.
  assert _grid_cells(out) == (2, 8) and len(os.listdir(out_dir)) == cells
  assert {'photo.png', 'reconstruction.png', 'variant_colour-navy.png'} <= set(os.listdir(out_dir))

  code = invert_cli.main([f'--workdir={run_dir}', '--image', str(tmp_path / 'missing.jpg'),
                          '--out', out])
  assert code == 2 and 'unreadable' in capsys.readouterr().err


@pytest.mark.parametrize('args,message', [
    (['--attr', 'colour=mauve'], "Unknown value 'mauve' for attribute 'colour'. Valid values:"),
    (['--known', 'shape=round'], "Unknown attribute 'shape'"),
    (['--sweep', 'size'], "Unknown attribute 'size'"),
    (['--image', 'missing.jpg'], 'unreadable'),
])
def test_invert_bad_input_exits_2_without_traceback(run_dir, tmp_path, args, message):
  """A real `python -m gan.invert` process; bad attributes fail before the checkpoint loads."""
  photo = tmp_path / 'photo.png'
  Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(photo)
  args = [str(tmp_path / a) if a.endswith('.jpg') else a for a in args]
  image = [] if '--image' in args else ['--image', str(photo)]
  proc = run_tool(['-m', 'gan.invert', f'--workdir={run_dir}', '--out', str(tmp_path / 'x.png')]
                  + image + args)
  assert_clean_error(proc, 2, message)
  assert 'checkpoint, step' not in proc.stdout  # Refused before restoring the checkpoint.
  assert not os.path.exists(tmp_path / 'x.png')


# ---- Post-processing ----

def test_postprocess_registry():
  images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
  assert postprocess.apply(images, '').shape == images.shape
  assert postprocess.apply(images, 'denoise,sharpen').shape == images.shape
  assert postprocess.apply(images, ['upscale4']).shape == (2, 64, 64, 3)
  denoised = postprocess.apply(images, 'denoise')
  assert np.std(denoised.astype(float)) < np.std(images.astype(float))
  with pytest.raises(ValueError, match='Valid postprocess op names'):
    postprocess.parse('sharpen,magic')


def test_inverter_compiles_once_and_reports_progress_in_chunks(run):
  """Chunks (the last one running past `steps`) give the one-call result; a second photo and
  other known attributes reuse the compiled programs."""
  photo = output.as_uint8(np.asarray(run.generate(latents.seed_latents(5, 1, run.latent_dim),
                                                  run.vocabulary.encode({})[None])))[0]
  config = inversion.InversionConfig(steps=7, restarts=2, seed=1)
  whole = inversion.invert(run, photo, config=config)
  inverter = inversion.Inverter(run, config, chunks=3)
  seen = []
  chunked = inverter(photo, progress=seen.append)
  assert seen == [1 / 3, 2 / 3, 1.0] and chunked.loss_history.shape == (7,)
  np.testing.assert_allclose(chunked.loss_history, whole.loss_history, rtol=1e-4)
  np.testing.assert_allclose(chunked.z, whole.z, atol=1e-4)
  assert chunked.attributes == whole.attributes
  inverter(255 - photo, known={'colour': 'navy'})
  assert inverter._chunk._cache_size() == 1
