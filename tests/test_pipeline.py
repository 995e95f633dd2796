"""Input pipeline: any TFDS dataset by name, topology-independent global stream, exact resume."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan.data import augment, pipeline
from tests.conftest import tiny_config


def _take(ds, n):
  it = ds.as_numpy_iterator()
  return [next(it) for _ in range(n)]


def test_vocabulary_from_classlabels(tfds_dir):
  spec = pipeline.open_dataset('synthetic_products/tiny', tfds_dir)
  assert spec.vocabulary.names == ('category', 'colour', 'pattern', 'material')
  assert 'navy' in spec.vocabulary.values('colour')
  assert spec.vocabulary.values('material') == ('fabric', 'plastic', 'metal', 'leather')
  with pytest.raises(ValueError, match='available: category, colour, pattern, material'):
    pipeline.open_dataset('synthetic_products/tiny', tfds_dir, attributes=('finish',))


def test_unknown_dataset_name_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match='gan.data.catalog build'):
    pipeline.open_dataset('no_such_catalogue_xyz', str(tmp_path))


def test_batches_shapes_ranges_and_process_slices(tfds_dir):
  config = tiny_config(**{'data.data_dir': tfds_dir})
  spec = pipeline.open_dataset(config.data.name, tfds_dir)
  whole = _take(pipeline.train_dataset(spec, config, process_index=0, process_count=1), 3)
  b = whole[0]
  assert b['image'].shape == (16, 16, 16, 3) and b['image'].dtype == np.float32
  assert -1.0 <= b['image'].min() and b['image'].max() <= 1.0
  assert b['labels'].shape == (16, 4) and b['labels'].dtype == np.int32
  # Two processes each get their half of the same global batches.
  halves = [_take(pipeline.train_dataset(spec, config, process_index=p, process_count=2), 3)
            for p in range(2)]
  for i in range(3):
    for key in ('image', 'labels'):
      np.testing.assert_array_equal(
          np.concatenate([halves[0][i][key], halves[1][i][key]]), whole[i][key])


def test_resume_position_gives_the_same_stream_with_augmentation(tfds_dir):
  config = tiny_config(**{'data.data_dir': tfds_dir})
  spec = pipeline.open_dataset(config.data.name, tfds_dir)
  aug = augment.build_augment(['flip', 'zoom(max_scale=1.2)'], spec.vocabulary.names)
  # 512 images / 16 per batch = 32 steps per epoch: step 40 is inside the second epoch.
  full = _take(pipeline.train_dataset(spec, config, augment_fn=aug), 42)
  resumed = _take(pipeline.train_dataset(spec, config, start_step=40, augment_fn=aug), 2)
  for a, b in zip(full[40:], resumed):
    np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(a['labels'], b['labels'])
  # Epochs are shuffled differently.
  assert not np.array_equal(full[0]['labels'], full[32]['labels'])


def test_any_tfds_dataset_by_name_with_mock_data():
  # fashion_mnist: 28x28 grayscale with a 10-name 'label' -> RGB at the model's resolution.
  config = tiny_config(**{'data.name': 'fashion_mnist', 'data.resolution': 32})
  with tfds.testing.mock_data(num_examples=40):
    spec = pipeline.open_dataset('fashion_mnist')
    assert spec.vocabulary.names == ('label',)
    assert spec.vocabulary.values('label')[0] == 'T-shirt/top'
    b = _take(pipeline.train_dataset(spec, config), 1)[0]
  assert b['image'].shape == (16, 32, 32, 3)
  np.testing.assert_array_equal(b['image'][..., 0], b['image'][..., 2])  # grey -> RGB
  assert b['labels'].shape == (16, 1) and b['labels'].max() < 10


def test_prefetch_to_devices_runs_ahead_and_keeps_the_values():
  import jax
  from gan import parallel
  pulled = []

  def host_batches():
    for i in range(4):
      pulled.append(i)
      yield {'image': np.full((jax.local_device_count(), 2, 3), i, np.float32)}

  batches = parallel.prefetch_to_devices(host_batches(), 2)
  first = next(batches)
  assert pulled == [0, 1]  # Two batches on the devices before the first step runs.
  assert isinstance(first['image'], jax.Array)
  assert first['image'].sharding.device_set == set(jax.local_devices())
  assert [float(np.asarray(b['image']).mean()) for b in [first, *batches]] == [0, 1, 2, 3]
  pulled.clear()
  first = next(parallel.prefetch_to_devices(host_batches(), 0))  # 0 = off: host arrays as read.
  assert pulled == [0] and isinstance(first['image'], np.ndarray)


@pytest.mark.parametrize('prefetch', [-1, 1.5, True])
def test_bad_prefetch_is_refused_with_the_config(prefetch):
  from gan import train
  config = tiny_config()
  with config.unlocked(), config.ignore_type():
    config.data.prefetch = prefetch
  with pytest.raises(ValueError, match='data.prefetch must be a whole number >= 0'):
    train.validate_config(config)


def test_training_honours_data_prefetch(tfds_dir, trained_run_dir, tmp_path, monkeypatch):
  """Training reads config.data.prefetch; prefetching moves the copy, never the values: the shared
  run (prefetch 2, the default) and one without prefetch end with identical parameters."""
  import jax
  import orbax.checkpoint as ocp
  from gan import checkpoint, parallel, train
  sizes = []
  prefetch = parallel.prefetch_to_devices
  monkeypatch.setattr(parallel, 'prefetch_to_devices',
                      lambda batches, size: sizes.append(size) or prefetch(batches, size))
  config = tiny_config(**{'data.data_dir': tfds_dir, 'num_train_steps': 4, 'sample_every_steps': 0,
                          'data.prefetch': 0})
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config, workdir)
  assert sizes == [0]

  def leaves(run):
    manager = checkpoint.Checkpointer(run, read_only=True).manager
    state = manager.restore(4, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    return jax.tree_util.tree_leaves(state['state'])
  for a, b in zip(leaves(trained_run_dir), leaves(workdir), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
