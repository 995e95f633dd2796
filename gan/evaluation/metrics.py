"""Sample-quality and control metrics on feature arrays.

Every function here is pure numpy/scipy: it takes feature arrays of shape
[N, D] (any float dtype; computed in float64) produced by a feature extractor
(`gan.evaluation.classifier` or `gan.evaluation.inception`) and returns plain
Python floats or numpy arrays. Nothing here knows about JAX or images.

- `fid`: Frechet distance between Gaussians fitted to two feature sets
  (Heusel et al. 2017; follows the reference TTUR implementation).
- `kid`: unbiased MMD^2 with the cubic polynomial kernel, averaged over
  random subsets (Binkowski et al. 2018).
- `precision_recall`: k-NN manifold precision and recall (Kynkaanniemi et al.
  2019).
- `nearest_neighbour_distances`: memorisation check; distance from each query
  to its nearest reference.
- `control_accuracy`: how often an attribute classifier agrees with the
  attribute the generator was asked for, plus the confusion matrix.
"""
import warnings
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import linalg

# Rows of a distance block computed at once: a [1024, 10000] float64 block is
# ~80 MB, so 10k x 10k problems never materialise the full matrix.
DEFAULT_BATCH = 1024


def _as_features(x, name: str, min_rows: int = 1) -> np.ndarray:
  """Validates a feature array and returns it as float64 [N, D]."""
  x = np.asarray(x)
  if x.ndim != 2:
    raise ValueError(
        f'{name} must be a 2-D feature array [num_samples, feature_dim], got shape '
        f'{x.shape}. Flatten or pool image features before calling metrics.')
  if x.shape[0] < min_rows:
    raise ValueError(f'{name} needs at least {min_rows} rows, got {x.shape[0]}.')
  if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
    raise ValueError(f'{name} must be a real numeric array, got dtype {x.dtype}.')
  x = x.astype(np.float64, copy=False)
  if not np.isfinite(x).all():
    raise ValueError(f'{name} contains NaN or Inf values; check the feature extractor inputs.')
  return x


def _check_same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str):
  if a.shape[1] != b.shape[1]:
    raise ValueError(
        f'{name_a} and {name_b} have different feature dims ({a.shape[1]} vs {b.shape[1]}); '
        'both must come from the same feature extractor.')


# ----------------------------------------------------------------------------- FID


def feature_statistics(feats) -> Tuple[np.ndarray, np.ndarray]:
  """Mean [D] and unbiased covariance [D, D] of features [N, D] (N >= 2).

  Cache these for the real set and pass them to `frechet_distance` to avoid
  recomputing the real statistics at every evaluation.
  """
  feats = _as_features(feats, 'feats', min_rows=2)
  mu = feats.mean(axis=0)
  sigma = np.cov(feats, rowvar=False)
  return mu, np.atleast_2d(sigma)


def _sqrtm(a: np.ndarray) -> np.ndarray:
  """Matrix square root; non-finite output is returned as-is for the caller to fix."""
  with np.errstate(all='ignore'), warnings.catch_warnings():
    # Singular products are expected (N < D); the caller retries with an offset.
    warnings.simplefilter('ignore', linalg.LinAlgWarning)
    return linalg.sqrtm(a)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
  """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))

  As in the reference TTUR code: when sqrtm of the product is not finite
  (singular covariances, e.g. fewer samples than dims), `eps` * I is added to
  both covariances and the root is recomputed; a small imaginary part from
  round-off is dropped, a large one (> 1e-3 on the diagonal) is an error.
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or mu1.ndim != 1:
    raise ValueError(
        f'Mean vectors must be 1-D with equal shapes, got {mu1.shape} and {mu2.shape}.')
  d = mu1.shape[0]
  if sigma1.shape != (d, d) or sigma2.shape != (d, d):
    raise ValueError(
        f'Covariances must be [{d}, {d}] to match the means, got {sigma1.shape} and '
        f'{sigma2.shape}.')

  diff = mu1 - mu2
  covmean = _sqrtm(sigma1.dot(sigma2))
  if not np.isfinite(covmean).all():
    offset = np.eye(d) * eps
    covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if not np.isfinite(covmean).all():
      raise ValueError(
          'sqrtm(sigma1 @ sigma2) is not finite even after adding an eps offset; the '
          'covariances are degenerate (too few samples or constant features). Use more samples.')
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      m = np.max(np.abs(covmean.imag))
      raise ValueError(f'sqrtm(sigma1 @ sigma2) has a large imaginary component ({m:.3g}); '
                       'the covariance estimates are unreliable. Use more samples.')
    covmean = covmean.real
  return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(feats_a, feats_b, eps: float = 1e-6) -> float:
  """Frechet Inception Distance between two feature sets [N, D] and [M, D].

  Lower is better; 0 for identical sets (up to round-off). Meaningful values
  need N, M well above D (the literature uses 50k samples for 2048-d
  Inception features); with fewer samples FID is biased upwards, so compare
  values only at equal sample counts.
  """
  a = _as_features(feats_a, 'feats_a', min_rows=2)
  b = _as_features(feats_b, 'feats_b', min_rows=2)
  _check_same_dim(a, b, 'feats_a', 'feats_b')
  return frechet_distance(*feature_statistics(a), *feature_statistics(b), eps=eps)


# ----------------------------------------------------------------------------- KID


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """The KID kernel k(x, y) = (x . y / d + 1)^3 for rows of x [N, D], y [M, D]."""
  d = x.shape[1]
  return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2 estimate (U-statistic) with the cubic polynomial kernel.

  Diagonal terms k(x_i, x_i) are excluded from the within-set sums, which is
  what makes the estimate unbiased.
  """
  m, n = x.shape[0], y.shape[0]
  if m < 2 or n < 2:
    raise ValueError(f'Unbiased MMD needs at least 2 samples per set, got {m} and {n}.')
  k_xx = polynomial_kernel(x, x)
  k_yy = polynomial_kernel(y, y)
  k_xy = polynomial_kernel(x, y)
  sum_xx = k_xx.sum() - np.trace(k_xx)
  sum_yy = k_yy.sum() - np.trace(k_yy)
  return float(sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.sum() / (m * n))


def kid(feats_a, feats_b, num_subsets: int = 100, subset_size: int = 1000,
        rng: Optional[np.random.Generator] = None) -> Tuple[float, float]:
  """Kernel Inception Distance: mean unbiased MMD^2 over random subsets.

  Each of `num_subsets` rounds draws `subset_size` rows without replacement
  from each set (clipped to the smaller set) and computes `mmd2_unbiased`.

  Args:
    feats_a, feats_b: features [N, D] and [M, D].
    num_subsets: number of subset rounds.
    subset_size: rows per set per round; clipped to half the smaller set.
    rng: numpy Generator (or int seed); default seed 0, so results are
      reproducible unless you pass your own.

  Returns:
    (mean, std_err): the mean of the subset estimates (an unbiased estimate of
    MMD^2, which can be slightly negative when the distributions match) and
    its standard error std(estimates) / sqrt(num_subsets). Subsets overlap
    when subset_size is close to the set size, so std_err then understates
    the uncertainty of the full-set value.
  """
  a = _as_features(feats_a, 'feats_a', min_rows=2)
  b = _as_features(feats_b, 'feats_b', min_rows=2)
  _check_same_dim(a, b, 'feats_a', 'feats_b')
  if num_subsets < 1:
    raise ValueError(f'num_subsets must be >= 1, got {num_subsets}.')
  if subset_size < 2:
    raise ValueError(f'subset_size must be >= 2, got {subset_size}.')
  rng = np.random.default_rng(0 if rng is None else rng)
  # At most half of the smaller set: subsets of the whole set would all be equal and the standard
  # error would read 0 (seen with 1000 samples and the default subset size of 1000).
  size = min(subset_size, max(2, min(a.shape[0], b.shape[0]) // 2))
  estimates = np.empty(num_subsets)
  for i in range(num_subsets):
    xa = a[rng.choice(a.shape[0], size, replace=False)]
    xb = b[rng.choice(b.shape[0], size, replace=False)]
    estimates[i] = mmd2_unbiased(xa, xb)
  std_err = estimates.std(ddof=1) / np.sqrt(num_subsets) if num_subsets > 1 else float('nan')
  return float(estimates.mean()), float(std_err)


# ----------------------------------------------------------------- nearest neighbours


def _squared_norms(x: np.ndarray) -> np.ndarray:
  return np.einsum('ij,ij->i', x, x)


def _squared_distances(q: np.ndarray, q_sq: np.ndarray, r: np.ndarray,
                       r_sq: np.ndarray) -> np.ndarray:
  """Pairwise squared Euclidean distances [len(q), len(r)], clipped at 0."""
  d = q_sq[:, None] - 2.0 * (q @ r.T) + r_sq[None, :]
  return np.maximum(d, 0.0)


def _check_batch(batch: int):
  if int(batch) < 1:
    raise ValueError(f'batch must be a positive number of rows, got {batch}.')


def nearest_neighbour_distances(queries, references, batch: int = DEFAULT_BATCH) -> np.ndarray:
  """Euclidean distance from each query row to its nearest reference row.

  For memorisation checks: compare the distances of generated features to
  the training set against those of held-out real features to the training
  set. Generated samples much closer than held-out ones are likely copies.

  Args:
    queries: [N, D] features.
    references: [M, D] features.
    batch: query rows per distance block (memory ~ 8 * batch * M bytes).

  Returns:
    float64 array [N].
  """
  q = _as_features(queries, 'queries')
  r = _as_features(references, 'references')
  _check_same_dim(q, r, 'queries', 'references')
  _check_batch(batch)
  q_sq, r_sq = _squared_norms(q), _squared_norms(r)
  out = np.empty(q.shape[0])
  for s in range(0, q.shape[0], batch):
    block = _squared_distances(q[s:s + batch], q_sq[s:s + batch], r, r_sq)
    out[s:s + batch] = block.min(axis=1)
  return np.sqrt(out)


def knn_radii(feats, k: int = 3, batch: int = DEFAULT_BATCH) -> np.ndarray:
  """Distance from each row to its k-th nearest other row ([N], float64).

  The point itself is not counted as a neighbour (it sits at index 0 of the
  sorted distances, so the k-th neighbour is at index k).
  """
  x = _as_features(feats, 'feats')
  _check_batch(batch)
  n = x.shape[0]
  if not 1 <= k < n:
    raise ValueError(f'k must be in [1, num_samples - 1] = [1, {n - 1}], got k={k}.')
  x_sq = _squared_norms(x)
  radii_sq = np.empty(n)
  for s in range(0, n, batch):
    block = _squared_distances(x[s:s + batch], x_sq[s:s + batch], x, x_sq)
    # Self-distance should be 0 but round-off can leave it slightly positive.
    rows = np.arange(block.shape[0])
    block[rows, rows + s] = 0.0
    radii_sq[s:s + batch] = np.partition(block, k, axis=1)[:, k]
  return np.sqrt(radii_sq)


def precision_recall(real, fake, k: int = 3, batch: int = DEFAULT_BATCH) -> Tuple[float, float]:
  """Improved precision and recall (Kynkaanniemi et al. 2019).

  The real manifold is the union of balls around each real feature with
  radius = distance to its k-th nearest real neighbour; likewise for fake.
    precision = fraction of fake samples inside the real manifold (quality),
    recall    = fraction of real samples inside the fake manifold (coverage).

  Distances are computed in row blocks of `batch`, so ~10k x 10k feature sets
  need only O(batch * N) memory. Both sets should have the same size for
  the two numbers to be comparable (the paper uses equal sizes).

  Returns:
    (precision, recall), each in [0, 1].
  """
  r = _as_features(real, 'real', min_rows=k + 1)
  f = _as_features(fake, 'fake', min_rows=k + 1)
  _check_same_dim(r, f, 'real', 'fake')
  _check_batch(batch)
  real_radii_sq = knn_radii(r, k, batch) ** 2
  fake_radii_sq = knn_radii(f, k, batch) ** 2
  r_sq, f_sq = _squared_norms(r), _squared_norms(f)
  fake_in_real = np.zeros(f.shape[0], bool)
  real_in_fake = np.zeros(r.shape[0], bool)
  # One pass over fake-vs-real blocks serves both directions.
  for s in range(0, f.shape[0], batch):
    block = _squared_distances(f[s:s + batch], f_sq[s:s + batch], r, r_sq)
    fake_in_real[s:s + batch] = (block <= real_radii_sq[None, :]).any(axis=1)
    real_in_fake |= (block <= fake_radii_sq[s:s + batch, None]).any(axis=0)
  return float(fake_in_real.mean()), float(real_in_fake.mean())


# ------------------------------------------------------------------------ control


def control_accuracy(requested, predicted, num_classes: int) -> Tuple[float, np.ndarray]:
  """Agreement between requested attribute values and a classifier's predictions.

  Args:
    requested: int [N], the attribute value the generator was conditioned on.
    predicted: int [N], the classifier's prediction on the generated image.
    num_classes: number of values of this attribute.

  Returns:
    (accuracy, confusion): accuracy in [0, 1]; confusion is int64
    [num_classes, num_classes] with confusion[requested, predicted] counts
    (rows sum to how often each value was requested).
  """
  req = np.asarray(requested)
  pred = np.asarray(predicted)
  if req.ndim != 1 or pred.shape != req.shape:
    raise ValueError(f'requested and predicted must be 1-D with equal shapes, got {req.shape} and '
                     f'{pred.shape}. Call once per attribute.')
  if req.size == 0:
    raise ValueError('requested and predicted are empty; need at least one sample.')
  if num_classes < 1:
    raise ValueError(f'num_classes must be >= 1, got {num_classes}.')
  for name, v in (('requested', req), ('predicted', pred)):
    if not np.issubdtype(v.dtype, np.integer):
      raise ValueError(f'{name} must hold integer class ids, got dtype {v.dtype}.')
    if v.min() < 0 or v.max() >= num_classes:
      raise ValueError(f'{name} has class ids outside [0, {num_classes - 1}] '
                       f'(min {v.min()}, max {v.max()}); check num_classes.')
  confusion = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(confusion, (req, pred), 1)
  return float(np.mean(req == pred)), confusion


# ------------------------------------------------------------------------ diversity


def mean_pairwise_distance(x) -> float:
  """Mean Euclidean distance over all pairs of rows of x [n, ...]; 0 for fewer than 2 rows."""
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  if len(x) < 2:
    return 0.0
  sq = np.sum(x * x, axis=1)
  d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
  iu = np.triu_indices(len(x), k=1)
  return float(np.mean(np.sqrt(d2[iu])))


def mean_pairwise_rms(images) -> float:
  """Mean pairwise RMS distance of images [n, H, W, C] (uint8 read as [0, 1] pixels)."""
  images = np.asarray(images)
  x = images.astype(np.float64) / (255.0 if images.dtype == np.uint8 else 1.0)
  return mean_pairwise_distance(x) / np.sqrt(max(x[0].size, 1)) if len(x) else 0.0


def diversity_ratio(generated: Sequence, real_spreads: Sequence[float], spread=mean_pairwise_distance
                    ) -> float:
  """Intra-condition diversity: mean over conditions of spread(generated_c) / real_spreads[c].

  generated[c] holds the images (or features) generated for condition c; real_spreads[c] is the
  same spread measured on real images of that condition. 1 = as varied as the catalogue within a
  condition; near 0 = one image per condition whatever the latent (collapse). Conditions whose
  real spread is 0 are skipped.
  """
  if len(generated) != len(real_spreads):
    raise ValueError(f'{len(generated)} generated sets but {len(real_spreads)} real spreads; '
                     'give one of each per condition.')
  ratios = [spread(g) / r for g, r in zip(generated, real_spreads) if r > 0]
  if not ratios:
    raise ValueError('No condition has a real spread above 0: the real sets need at least two '
                     'different images each.')
  return float(np.mean(ratios))


def intra_fid(gen_feats, gen_values, real_feats, real_values, min_count: int = 2) -> Tuple[float, int]:
  """Intra-attribute FID: the mean over values v of FID(generated with v, real with v).

  Miyato & Koyama 2018's intra-FID, per attribute. Values with fewer than `min_count` images on
  either side are skipped. Returns (mean, number of values used). With one value it is the FID.
  """
  gen_values, real_values = np.asarray(gen_values), np.asarray(real_values)
  scores = []
  for v in np.unique(real_values):
    g, r = gen_feats[gen_values == v], real_feats[real_values == v]
    if len(g) >= max(min_count, 2) and len(r) >= max(min_count, 2):
      scores.append(fid(g, r))
  if not scores:
    raise ValueError('No attribute value has at least two generated and two real images; use more '
                     'evaluation samples (config.eval.num_samples).')
  return float(np.mean(scores)), len(scores)
