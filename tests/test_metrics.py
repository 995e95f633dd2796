"""Tests for gan.evaluation.metrics: FID, KID, precision/recall, NN distances, control."""
import numpy as np
import pytest

from gan.evaluation import metrics


def _gaussian(rng, n, mean, cov):
  return rng.multivariate_normal(mean, cov, size=n)


def _random_spd(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T / d + 0.1 * np.eye(d)


def _frechet_symmetric(mu1, s1, mu2, s2):
  """Independent closed form via eigendecompositions: Tr((S1^1/2 S2 S1^1/2)^1/2)."""
  def sqrt_psd(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.maximum(w, 0))) @ v.T
  r1 = sqrt_psd(s1)
  cross = sqrt_psd(r1 @ s2 @ r1)
  diff = mu1 - mu2
  return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(cross)


# ------------------------------------------------------------------------------ FID


def test_fid_identical_sets_is_zero():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16)) + 3.0
  scale = np.trace(np.cov(x, rowvar=False))
  assert abs(metrics.fid(x, x)) < 1e-6 * scale


def test_frechet_distance_diagonal_closed_form():
  mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
  v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
  expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
  got = metrics.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
  assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_general_covariances_match_symmetric_form():
  rng = np.random.default_rng(1)
  d = 6
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
  got = metrics.frechet_distance(mu1, s1, mu2, s2)
  assert got == pytest.approx(_frechet_symmetric(mu1, s1, mu2, s2), rel=1e-8)


def test_fid_on_samples_approaches_population_value():
  rng = np.random.default_rng(2)
  mu1, mu2 = np.zeros(4), np.array([1.0, 0.0, -0.5, 0.0])
  v1, v2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([2.0, 1.0, 0.5, 3.0])
  expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
  a = _gaussian(rng, 40000, mu1, np.diag(v1))
  b = _gaussian(rng, 40000, mu2, np.diag(v2))
  assert metrics.fid(a, b) == pytest.approx(expected, abs=0.05)


def test_fid_singular_covariance_uses_offset_and_stays_finite():
  rng = np.random.default_rng(3)
  # Fewer samples than dims: both covariances are singular.
  a, b = rng.normal(size=(10, 32)), rng.normal(size=(10, 32)) + 1.0
  value = metrics.fid(a, b)
  assert np.isfinite(value)
  # The mean term alone is 32; the covariance term cannot make it negative.
  assert value > 30.0


def test_fid_bad_inputs_raise():
  x = np.zeros((5, 3))
  with pytest.raises(ValueError, match='different feature dims'):
    metrics.fid(x, np.zeros((5, 4)))
  with pytest.raises(ValueError, match='2-D'):
    metrics.fid(np.zeros(5), x)
  with pytest.raises(ValueError, match='NaN'):
    metrics.fid(np.full((5, 3), np.nan), x)
  with pytest.raises(ValueError, match='at least 2'):
    metrics.fid(np.zeros((1, 3)), x)


# ------------------------------------------------------------------------------ KID


def test_kid_same_distribution_is_zero_within_std_err():
  rng = np.random.default_rng(4)
  a, b = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
  mean, std_err = metrics.kid(a, b, num_subsets=50, subset_size=200, rng=0)
  assert std_err > 0
  assert abs(mean) < 4 * std_err
  # And a shifted distribution is clearly detected with the same settings.
  mean_shift, err_shift = metrics.kid(a, b + 0.5, num_subsets=50, subset_size=200, rng=0)
  assert mean_shift > 20 * err_shift


def test_kid_is_unbiased_for_small_subsets():
  rng = np.random.default_rng(5)
  d, m = 3, 5
  p = rng.normal(size=(60, d))
  q = rng.normal(size=(60, d)) * 1.3 + 0.3

  def kern(x, y):
    return (x @ y.T / d + 1.0) ** 3

  # Population MMD^2 for draws without replacement: off-diagonal means within
  # a set (no point is paired with itself), all pairs across sets.
  def off_diag_mean(k):
    n = k.shape[0]
    return (k.sum() - np.trace(k)) / (n * (n - 1))
  k_pp, k_qq, k_pq = kern(p, p), kern(q, q), kern(p, q)
  population = off_diag_mean(k_pp) + off_diag_mean(k_qq) - 2 * k_pq.mean()

  mean, std_err = metrics.kid(p, q, num_subsets=4000, subset_size=m, rng=1)
  assert abs(mean - population) < 4 * std_err
  # The test can tell: a biased (V-statistic) estimator keeps the diagonal
  # terms and would be off by far more than the tolerance.
  def biased_expectation(k):
    return np.trace(k) / k.shape[0] / m + (1 - 1 / m) * off_diag_mean(k)
  biased = biased_expectation(k_pp) + biased_expectation(k_qq) - 2 * k_pq.mean()
  assert abs(biased - population) > 10 * std_err


def test_kid_subset_size_is_clipped_to_half_the_smaller_set():
  rng = np.random.default_rng(6)
  a, b = rng.normal(size=(30, 4)), rng.normal(size=(30, 4)) + 0.2
  # Subsets of 15 of 30 rows differ from each other, so the standard error is informative (with
  # subsets of the whole set every estimate would be the same full-set U-statistic, error 0).
  mean, std_err = metrics.kid(a, b, num_subsets=50, subset_size=1000, rng=0)
  assert std_err > 1e-4
  assert abs(mean - metrics.mmd2_unbiased(a, b)) < 4 * std_err * np.sqrt(50)
  # Unequal set sizes also clip (to 10 here) without error.
  mean, _ = metrics.kid(a[:20], b, num_subsets=3, subset_size=1000, rng=0)
  assert np.isfinite(mean)


def test_kid_reproducible_with_seed():
  rng = np.random.default_rng(7)
  a, b = rng.normal(size=(100, 4)), rng.normal(size=(120, 4))
  assert metrics.kid(a, b, 10, 50, rng=3) == metrics.kid(a, b, 10, 50, rng=3)


# ---------------------------------------------------------------- precision/recall


def test_precision_recall_identical_sets():
  rng = np.random.default_rng(8)
  real = rng.normal(size=(300, 8))
  assert metrics.precision_recall(real, real.copy(), k=3) == (1.0, 1.0)


def test_precision_recall_disjoint_sets():
  rng = np.random.default_rng(9)
  real = rng.normal(size=(300, 8))
  fake = rng.normal(size=(300, 8)) + 100.0
  assert metrics.precision_recall(real, fake, k=3) == (0.0, 0.0)


def test_precision_recall_mode_dropping():
  rng = np.random.default_rng(10)
  num_modes, per_mode, d = 10, 200, 2
  centers = rng.normal(size=(num_modes, d)) * 30.0
  real = np.concatenate([c + rng.normal(size=(per_mode, d)) for c in centers])
  # Fake covers only half the modes, with the same total count, fresh samples.
  fake = np.concatenate([c + rng.normal(size=(2 * per_mode, d)) for c in centers[:5]])
  precision, recall = metrics.precision_recall(real, fake, k=3)
  assert precision > 0.95
  assert 0.45 < recall <= 0.5


def test_precision_recall_independent_of_batch_size():
  rng = np.random.default_rng(11)
  real, fake = rng.normal(size=(120, 5)), rng.normal(size=(90, 5)) * 1.5
  assert (metrics.precision_recall(real, fake, k=4, batch=7)
          == metrics.precision_recall(real, fake, k=4))


def test_knn_radii_hand_made():
  x = np.array([[0.0], [1.0], [3.0], [6.0]])
  np.testing.assert_allclose(metrics.knn_radii(x, k=1), [1, 1, 2, 3])
  np.testing.assert_allclose(metrics.knn_radii(x, k=2, batch=3), [3, 2, 3, 5])
  with pytest.raises(ValueError, match='k must be'):
    metrics.knn_radii(x, k=4)


# ------------------------------------------------------------------ NN distances


def test_nearest_neighbour_distances_hand_made():
  refs = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
  queries = np.array([[1.0, 0.0], [9.0, 1.0], [0.0, 0.0], [5.0, 5.0]])
  expected = [1.0, np.sqrt(2.0), 0.0, np.sqrt(50.0)]
  for batch in (1, 3, 1024):
    np.testing.assert_allclose(metrics.nearest_neighbour_distances(queries, refs, batch=batch),
                               expected, atol=1e-12)


def test_nearest_neighbour_distances_flags_copies():
  rng = np.random.default_rng(12)
  train = rng.normal(size=(200, 16))
  held_out = rng.normal(size=(50, 16))
  copies = train[:50] + 1e-3 * rng.normal(size=(50, 16))
  d_copies = metrics.nearest_neighbour_distances(copies, train, batch=16)
  d_held = metrics.nearest_neighbour_distances(held_out, train, batch=16)
  assert d_copies.max() < 0.1 < d_held.min()


# ----------------------------------------------------------------------- control


def test_control_accuracy_and_confusion():
  requested = np.array([0, 0, 1, 2, 2, 2])
  predicted = np.array([0, 1, 1, 2, 0, 2])
  acc, confusion = metrics.control_accuracy(requested, predicted, num_classes=4)
  assert acc == pytest.approx(4 / 6)
  np.testing.assert_array_equal(
      confusion, [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
  assert confusion.sum() == 6


def test_control_accuracy_bad_inputs():
  with pytest.raises(ValueError, match='outside'):
    metrics.control_accuracy([0, 3], [0, 1], num_classes=3)
  with pytest.raises(ValueError, match='equal shapes'):
    metrics.control_accuracy([0, 1], [0], num_classes=3)
  with pytest.raises(ValueError, match='integer'):
    metrics.control_accuracy(np.array([0.0, 1.0]), np.array([0, 1]), num_classes=3)


# ---- Intra-condition diversity and intra-attribute FID ----

def _condition_sets(rng, conditions=5, per_condition=48, size=8):
  """Per condition: images varying around a condition-specific mean (real-like sets)."""
  return [np.clip(rng.uniform(0.2, 0.8, (1, size, size, 3))
                  + rng.normal(0, 0.1, (per_condition, size, size, 3)), 0, 1)
          for _ in range(conditions)]


def test_diversity_is_one_for_two_halves_of_one_real_set():
  rng = np.random.default_rng(0)
  sets = _condition_sets(rng)
  halves_a = [s[:24] for s in sets]
  spreads_b = [metrics.mean_pairwise_rms(s[24:]) for s in sets]
  ratio = metrics.diversity_ratio(halves_a, spreads_b, metrics.mean_pairwise_rms)
  assert abs(ratio - 1.0) < 0.05, ratio


def test_diversity_is_near_zero_for_copies_of_one_image():
  rng = np.random.default_rng(1)
  sets = _condition_sets(rng)
  copies = [np.repeat(s[:1], 24, axis=0) for s in sets]
  spreads = [metrics.mean_pairwise_rms(s) for s in sets]
  assert metrics.diversity_ratio(copies, spreads, metrics.mean_pairwise_rms) < 1e-6
  # Near-copies (a little pixel noise) stay near zero too.
  noisy = [c + rng.normal(0, 0.005, c.shape) for c in copies]
  assert metrics.diversity_ratio(noisy, spreads, metrics.mean_pairwise_rms) < 0.1


def test_mean_pairwise_rms_reads_uint8_as_unit_range():
  a = np.zeros((2, 4, 4, 3), np.uint8)
  a[1] = 255
  assert metrics.mean_pairwise_rms(a) == pytest.approx(1.0)
  assert metrics.mean_pairwise_rms(a.astype(np.float32) / 255) == pytest.approx(1.0)


def test_diversity_ratio_bad_inputs():
  with pytest.raises(ValueError, match='one of each per condition'):
    metrics.diversity_ratio([np.zeros((2, 3))], [1.0, 2.0])
  with pytest.raises(ValueError, match='real spread above 0'):
    metrics.diversity_ratio([np.zeros((2, 3))], [0.0])


def test_intra_fid_equals_fid_with_one_value():
  rng = np.random.default_rng(2)
  gen, real = rng.normal(0, 1, (300, 4)), rng.normal(0.5, 1, (300, 4))
  value, used = metrics.intra_fid(gen, np.zeros(300, int), real, np.zeros(300, int))
  assert used == 1
  assert value == pytest.approx(metrics.fid(gen, real))


def test_intra_fid_sees_what_pooled_fid_hides():
  """Generated values swapped between two classes: the pooled sets agree, each class does not."""
  rng = np.random.default_rng(3)
  real_values = np.repeat([0, 1], 400)
  real = rng.normal(0, 1, (800, 3)) + np.where(real_values[:, None] == 0, -3.0, 3.0)
  gen = rng.normal(0, 1, (800, 3)) + np.where(real_values[:, None] == 0, 3.0, -3.0)
  pooled = metrics.fid(gen, real)
  intra, used = metrics.intra_fid(gen, real_values, real, real_values)
  assert used == 2 and pooled < 0.5 and intra > 30, (pooled, intra)
