"""One EMA sampler (gan/sampler.py): training's grids, checkpoints, evaluation and the steering
tools draw the same images for the same latent, labels and state."""
import jax
import numpy as np
from PIL import Image

from gan import rundir, samples, train
from gan.control import loading
from gan.sampler import EmaSampler


def test_training_grid_evaluation_and_sampling_tools_agree(trained_run_dir):
  run = loading.load_run(trained_run_dir, 'latest')  # Step 4: training drew its grids from it.
  writer = train.SampleWriter(run.config, run.vocabulary, '/unused', None, run.label_prior)
  assert isinstance(run.sampler, EmaSampler) and isinstance(writer.sampler, EmaSampler)
  grid, z = writer.grids[0], writer.latents[0]
  written = np.asarray(Image.open(rundir.sample_grid_path(trained_run_dir, grid.name, run.step)))
  images = samples.to_uint8(run.generate(z, grid.labels))  # What gan.sample draws.
  np.testing.assert_array_equal(samples.tile(images, grid.rows, grid.cols), written)

  # Evaluation re-estimates the standing statistics: it finds the ones the checkpoint holds, so
  # it judges the images the tools draw.
  standing = writer.sampler.with_standing_stats(run.state)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                         standing.ema_batch_stats, run.state.ema_batch_stats)
  evaluated = writer.sampler.generate_batched(standing, z, grid.labels, batch_size=len(z))
  np.testing.assert_array_equal(samples.to_uint8(evaluated), images)
