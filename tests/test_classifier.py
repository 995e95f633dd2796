"""Tests for gan.evaluation.classifier: training, features, predictions, files."""
import json
import os

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan.evaluation import classifier

NUM_CLASSES = (4, 3)
COLOURS = np.array([[220, 40, 40], [40, 200, 60], [50, 80, 230], [230, 210, 40]], np.float32)


def make_products(n, seed, size=32):
  """Toy catalogue: a square of colour c (attribute 0, 4 values) in the top,
  middle or bottom band (attribute 1, 3 values), anywhere left-to-right, on a
  random background, with pixel noise. Horizontal flips keep both labels."""
  rng = np.random.default_rng(seed)
  colour = rng.integers(0, 4, n)
  band = rng.integers(0, 3, n)
  images = np.empty((n, size, size, 3), np.float32)
  images[:] = rng.uniform(90, 170, (n, 1, 1, 3))
  side = size // 4
  for i in range(n):
    top = band[i] * size // 3 + rng.integers(0, size // 3 - side + 1)
    left = rng.integers(0, size - side + 1)
    images[i, top:top + side, left:left + side] = COLOURS[colour[i]]
  images += rng.normal(0, 20, images.shape)
  return np.clip(images, 0, 255).astype(np.uint8), np.stack([colour, band], 1)


@pytest.fixture(scope='module')
def data():
  return make_products(1024, seed=0), make_products(256, seed=1)


@pytest.fixture(scope='module')
def bundle(data):
  (x, y), _ = data
  return classifier.train_classifier(x, y, NUM_CLASSES, steps=200, batch_size=32, width=8,
                                     feature_dim=32, seed=0)


def test_held_out_accuracy(bundle, data):
  _, (xt, yt) = data
  accs = classifier.evaluate_accuracy(bundle, xt, yt)
  assert len(accs) == 2
  assert min(accs) > 0.9, accs


def test_features_and_predictions(bundle, data):
  _, (xt, _) = data
  feats = bundle.features(xt[:10])
  assert feats.shape == (10, 32) and feats.dtype == np.float64
  assert np.isfinite(feats).all()
  preds = bundle.predict(xt[:10])
  assert preds.shape == (10, 2)
  assert (preds >= 0).all() and (preds[:, 0] < 4).all() and (preds[:, 1] < 3).all()
  # uint8 and [-1, 1] floats are the same images.
  np.testing.assert_allclose(bundle.features(xt[:10].astype(np.float32) / 127.5 - 1), feats,
                             rtol=1e-5, atol=1e-5)
  # The padded last batch does not change results.
  np.testing.assert_array_equal(bundle.predict(xt[:10], batch_size=3), preds)
  np.testing.assert_allclose(bundle.features(xt[:10], batch_size=3), feats, rtol=1e-5, atol=1e-5)
  assert bundle.features(xt[:0]).shape == (0, 32)


def test_other_resolution_is_resized(bundle, data):
  _, (xt, yt) = data
  big = np.repeat(np.repeat(xt[:64], 2, axis=1), 2, axis=2)  # 64x64, same content
  accs = classifier.evaluate_accuracy(bundle, big, yt[:64])
  assert min(accs) > 0.85, accs


def test_unknown_labels_are_ignored(bundle, data):
  _, (xt, yt) = data
  labels = yt[:40].copy()
  labels[:20, 0] = -1
  preds = bundle.predict(xt[:40])
  accs = classifier.evaluate_accuracy(bundle, xt[:40], labels)
  assert accs[0] == pytest.approx(np.mean(preds[20:, 0] == yt[20:40, 0]))
  # The loss masks unknown labels the same way.
  logits = (jnp.array([[2.0, 0.0], [0.0, 3.0], [5.0, -5.0]]),)
  loss = jax.jit(classifier._loss)  # one compile instead of many eager ops
  masked = loss(logits, jnp.array([[0], [1], [-1]]))
  kept = loss((logits[0][:2],), jnp.array([[0], [1]]))
  assert float(masked) == pytest.approx(float(kept))


def test_bad_inputs_raise(bundle, data):
  (x, y), _ = data
  with pytest.raises(ValueError, match=r'\[-1, 1\]'):
    bundle.features(x[:4].astype(np.float32))  # 0..255 floats
  with pytest.raises(ValueError, match='channel'):
    bundle.features(x[:4, :, :, :1])
  with pytest.raises(ValueError, match=r'\[N, H, W, C\]'):
    bundle.features(x[0])
  with pytest.raises(ValueError, match='labels must be'):
    classifier.train_classifier(x, y[:, :1], NUM_CLASSES, steps=1)
  with pytest.raises(ValueError, match='3 classes'):
    classifier.train_classifier(x[:2], np.array([[0, 3], [0, 0]]), NUM_CLASSES, steps=1)


def test_save_load_round_trip(bundle, data, tmp_path):
  _, (xt, _) = data
  path = str(tmp_path / 'sub' / 'clf.msgpack')
  classifier.save_classifier(bundle, path)
  assert sorted(os.listdir(tmp_path / 'sub')) == ['clf.json', 'clf.msgpack']  # no temp files left
  meta = json.loads((tmp_path / 'sub' / 'clf.json').read_text())
  assert meta['num_classes'] == [4, 3] and meta['resolution'] == [32, 32]
  loaded = classifier.load_classifier(path)
  assert (loaded.num_classes, loaded.resolution, loaded.feature_dim) == (NUM_CLASSES, (32, 32), 32)
  np.testing.assert_array_equal(loaded.predict(xt), bundle.predict(xt))
  np.testing.assert_array_equal(loaded.features(xt[:16]), bundle.features(xt[:16]))


def test_load_errors(bundle, tmp_path):
  with pytest.raises(FileNotFoundError, match='No classifier file'):
    classifier.load_classifier(str(tmp_path / 'absent.msgpack'))

  path = str(tmp_path / 'clf.msgpack')
  classifier.save_classifier(bundle, path)
  data = open(path, 'rb').read()

  truncated = str(tmp_path / 'truncated.msgpack')
  open(truncated, 'wb').write(data[:len(data) // 2])
  with pytest.raises(ValueError, match='not a readable classifier file'):
    classifier.load_classifier(truncated)

  other = str(tmp_path / 'other.msgpack')
  open(other, 'wb').write(flax.serialization.msgpack_serialize({'params': {}}))
  with pytest.raises(ValueError, match='expected keys metadata, params, batch_stats'):
    classifier.load_classifier(other)

  # Metadata that disagrees with the arrays: the error names what does not fit.
  state = flax.serialization.msgpack_restore(data)
  meta = json.loads(state['metadata'])
  meta['feature_dim'] = 48
  state['metadata'] = json.dumps(meta)
  del state['params']['head_1']
  bad = str(tmp_path / 'bad.msgpack')
  open(bad, 'wb').write(flax.serialization.msgpack_serialize(state))
  with pytest.raises(ValueError, match='missing: head_1/bias, head_1/kernel.*wrong shape: '):
    classifier.load_classifier(bad)
