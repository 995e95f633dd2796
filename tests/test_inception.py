"""Tests for gan.evaluation.inception (random weights only; no download ever).

Compiling Inception-V3 on CPU takes tens of seconds, so every forward here
uses the same module configuration and input shape: one compile in all.

The cross-check against pytorch-fid's network runs everywhere against features stored in
tests/fixtures/inception_reference.npz (computed with torch by
tests/fixtures/make_inception_reference.py), and live as well where torch is installed.
"""
import os
import pickle

import flax
import numpy as np
import pytest

from gan.evaluation import inception

BATCH = 2
REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures',
                         'inception_reference.npz')


def reference_images():
  rng = np.random.default_rng(0)
  return rng.integers(0, 256, (BATCH, 40, 57, 3), dtype=np.uint8)  # non-square: resize axes


def weights_checksum(arrays) -> float:
  """Identifies a weights file's contents (sum over keys of key-weighted array sums)."""
  return float(sum((i + 1) * np.sum(arrays[k], dtype=np.float64)
                   for i, k in enumerate(sorted(arrays))))


@pytest.fixture(scope='module')
def random_vars():
  return inception.random_variables(seed=0)


@pytest.fixture(scope='module')
def images():
  return reference_images()


@pytest.fixture(scope='module')
def weights_file(random_vars, tmp_path_factory):
  path = str(tmp_path_factory.mktemp('inception') / 'weights.npz')
  inception.save_inception_weights(random_vars, path)
  return path


def test_expected_keys_follow_pytorch_fid_names():
  shapes = inception.expected_weight_shapes()
  assert len(shapes) == 94 * 5  # 94 conv-BN layers, 5 arrays each
  assert shapes['Conv2d_1a_3x3.conv.weight'] == (32, 3, 3, 3)
  assert shapes['Mixed_5b.branch_pool.bn.running_var'] == (32,)
  assert shapes['Mixed_6b.branch7x7_2.conv.weight'] == (128, 128, 1, 7)
  assert shapes['Mixed_7c.branch3x3dbl_3b.conv.weight'] == (384, 384, 3, 1)
  assert shapes['Mixed_7c.branch_pool.conv.weight'] == (192, 2048, 1, 1)


def test_round_trip_and_features(random_vars, weights_file, images):
  module, loaded = inception.load_inception(weights_file)
  # Every array comes back exactly, in flax layout.
  for collection in ('params', 'batch_stats'):
    flat_a = flax.traverse_util.flatten_dict(random_vars[collection])
    flat_b = flax.traverse_util.flatten_dict(loaded[collection])
    assert flat_a.keys() == flat_b.keys()
    for k in flat_a:
      np.testing.assert_array_equal(np.asarray(flat_b[k]), flat_a[k], err_msg=str(k))
  feats = inception.inception_features(module, loaded, images, batch_size=BATCH)
  assert feats.shape == (BATCH, inception.FEATURE_DIM)
  assert np.isfinite(feats).all() and (feats >= 0).all() and feats.std() > 0
  # Same compiled function, original variables: identical features.
  again = inception.inception_features(module, random_vars, images, batch_size=BATCH)
  np.testing.assert_array_equal(again, feats)


def test_pickle_format_loads(random_vars, weights_file, tmp_path):
  with np.load(weights_file) as f:
    arrays = {k: f[k] for k in f.files}
  # Extra keys of the real torch state dict are ignored.
  arrays['fc.weight'] = np.zeros((1008, 2048), np.float32)
  arrays['Mixed_5b.branch1x1.bn.num_batches_tracked'] = np.array(0)
  path = tmp_path / 'weights.pkl'
  path.write_bytes(pickle.dumps(arrays))
  _, loaded = inception.load_inception(str(path))
  kernel = ('params', 'Mixed_7c', 'branch_pool', 'conv', 'kernel')
  np.testing.assert_array_equal(np.asarray(flax.traverse_util.flatten_dict(loaded)[kernel]),
                                flax.traverse_util.flatten_dict(random_vars)[kernel])


def test_missing_file_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='No Inception weights.*pt_inception-2015-12-05'):
    inception.load_inception(str(tmp_path / 'nope.npz'))


def test_missing_and_misshapen_keys_are_named(weights_file, tmp_path):
  with np.load(weights_file) as f:
    arrays = {k: f[k] for k in f.files}
  del arrays['Mixed_6c.branch7x7dbl_3.bn.running_mean']
  arrays['Conv2d_2a_3x3.conv.weight'] = np.zeros((32, 32, 1, 1), np.float32)
  arrays['blocks.0.0.conv.weight'] = np.zeros((1,), np.float32)
  path = str(tmp_path / 'broken.npz')
  np.savez(path, **arrays)
  with pytest.raises(ValueError) as e:
    inception.load_inception(path)
  message = str(e.value)
  assert 'missing keys: Mixed_6c.branch7x7dbl_3.bn.running_mean' in message
  assert 'Conv2d_2a_3x3.conv.weight (file (32, 32, 1, 1), expected (32, 32, 3, 3))' in message
  assert 'unexpected keys: blocks.0.0.conv.weight' in message


def test_unreadable_file_is_a_clear_error(tmp_path):
  path = tmp_path / 'garbage.npz'
  path.write_bytes(b'not a zip file')
  with pytest.raises(ValueError, match='Could not read Inception weights'):
    inception.load_inception(str(path))
  with pytest.raises(ValueError, match='unknown weights file type'):
    other = tmp_path / 'weights.bin'
    other.write_bytes(b'')
    inception.load_inception(str(other))


def test_bad_images_raise(random_vars):
  module = inception.InceptionV3()
  with pytest.raises(ValueError, match=r'\[N, H, W, 3\]'):
    inception.inception_features(module, random_vars, np.zeros((2, 32, 32), np.uint8))
  with pytest.raises(ValueError, match=r'\[-1, 1\]'):
    inception.inception_features(module, random_vars, np.full((2, 32, 32, 3), 3.0, np.float32))


def _torch_fid_inception():
  """pytorch-fid's FID Inception-V3 (torchvision blocks + FID patches) up to pool3,
  restated with plain torch modules (torchvision is not a dependency)."""
  import torch
  import torch.nn.functional as F
  from torch import nn

  class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, **kw):
      super().__init__()
      self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
      self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
      return F.relu(self.bn(self.conv(x)))

  def avg(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)

  class A(nn.Module):
    def __init__(self, cin, pool_features):
      super().__init__()
      self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
      self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
      self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
      self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
      self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
      self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
      self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
      return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                        self.branch_pool(avg(x))], 1)

  class B(nn.Module):
    def __init__(self, cin):
      super().__init__()
      self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
      self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
      self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
      self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
      return torch.cat([self.branch3x3(x),
                        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                        F.max_pool2d(x, kernel_size=3, stride=2)], 1)

  class C(nn.Module):
    def __init__(self, cin, c7):
      super().__init__()
      self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
      self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
      self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
      self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
      self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
      self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
      self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
      self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
      self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
      self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
      b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
      bd = self.branch7x7dbl_1(x)
      for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                    self.branch7x7dbl_5):
        bd = layer(bd)
      return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(avg(x))], 1)

  class D(nn.Module):
    def __init__(self, cin):
      super().__init__()
      self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
      self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
      self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
      self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
      self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
      self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
      b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
      return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7,
                        F.max_pool2d(x, kernel_size=3, stride=2)], 1)

  class E(nn.Module):
    def __init__(self, cin, max_pool):
      super().__init__()
      self.max_pool = max_pool
      self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
      self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
      self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
      self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
      self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
      self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
      self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
      self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
      self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
      b3 = self.branch3x3_1(x)
      b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
      bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
      bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
      pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else avg(x)
      return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)

  class FIDInception(nn.Module):
    def __init__(self):
      super().__init__()
      self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
      self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
      self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
      self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
      self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
      self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = A(192, 32), A(256, 64), A(288, 64)
      self.Mixed_6a = B(288)
      self.Mixed_6b, self.Mixed_6c = C(768, 128), C(768, 160)
      self.Mixed_6d, self.Mixed_6e = C(768, 160), C(768, 192)
      self.Mixed_7a, self.Mixed_7b, self.Mixed_7c = D(768), E(1280, False), E(2048, True)
      self.fc = nn.Linear(2048, 1008)

    def forward(self, x):  # x: [N, 3, H, W] in [0, 1], as pytorch-fid's InceptionV3
      x = F.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False)
      x = 2 * x - 1
      x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
      x = F.max_pool2d(x, kernel_size=3, stride=2)
      x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
      x = F.max_pool2d(x, kernel_size=3, stride=2)
      for name in ('5b', '5c', '5d', '6a', '6b', '6c', '6d', '6e', '7a', '7b', '7c'):
        x = getattr(self, 'Mixed_' + name)(x)
      return F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)

  return FIDInception().eval()


def torch_features(arrays, images):
  """pytorch-fid's pool3 features of uint8 images [N, H, W, 3] under weights in torch layout."""
  import torch
  net = _torch_fid_inception()
  state = {k: torch.from_numpy(v) for k, v in arrays.items()}
  # The real file's extras load too (strict on everything the features use).
  state['fc.weight'], state['fc.bias'] = net.fc.weight.detach(), net.fc.bias.detach()
  missing, unexpected = net.load_state_dict(state, strict=False)
  assert not unexpected and all(k.endswith('num_batches_tracked') for k in missing)
  with torch.no_grad():
    return net(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0).numpy()


def _assert_close(ours, expected):
  np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_matches_stored_pytorch_fid_reference(weights_file, images):
  """Same weights, same images: our features equal those torch's FID Inception computed."""
  with np.load(REFERENCE) as f:
    reference = {k: f[k] for k in f.files}
  with np.load(weights_file) as f:
    checksum = weights_checksum({k: f[k] for k in f.files})
  assert checksum == pytest.approx(float(reference['weights_checksum']), rel=1e-9), (
      'random_variables(seed=0) changed since the reference was made: rerun '
      'tests/fixtures/make_inception_reference.py (needs torch).')
  np.testing.assert_array_equal(reference['images'], images)
  assert reference['features'].shape == (BATCH, inception.FEATURE_DIM)
  assert reference['features'].std() > 0
  module, variables = inception.load_inception(weights_file)
  _assert_close(inception.inception_features(module, variables, images, batch_size=BATCH),
                reference['features'])


def test_matches_pytorch_fid_reference_live(weights_file, images):
  """Where torch is installed: the same comparison, computed now."""
  pytest.importorskip('torch')
  with np.load(weights_file) as f:
    expected = torch_features({k: f[k] for k in f.files}, images)
  module, variables = inception.load_inception(weights_file)
  _assert_close(inception.inception_features(module, variables, images, batch_size=BATCH), expected)
