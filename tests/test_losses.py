import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan import losses

R = jnp.array([2.0, -1.0])
F = jnp.array([0.5, -3.0])


def sp(x):
  return np.log1p(np.exp(x))


@pytest.mark.parametrize('name,d_real,d_fake,g', [
    ('non_saturating', (sp(-2.0) + sp(1.0)) / 2, (sp(0.5) + sp(-3.0)) / 2, (sp(-0.5) + sp(3.0)) / 2),
    ('hinge', (0.0 + 2.0) / 2, (1.5 + 0.0) / 2, -(0.5 - 3.0) / 2),
    ('wasserstein', -(2.0 - 1.0) / 2, (0.5 - 3.0) / 2, -(0.5 - 3.0) / 2),
    ('least_squares', 0.5 * (1.0 + 4.0) / 2, 0.5 * (0.25 + 9.0) / 2, 0.5 * (0.25 + 16.0) / 2),
])
def test_loss_values_by_hand(name, d_real, d_fake, g):
  loss = losses.LOSSES.get(name)
  np.testing.assert_allclose(loss.d_real(R), d_real, rtol=1e-6)
  np.testing.assert_allclose(loss.d_fake(F), d_fake, rtol=1e-6)
  np.testing.assert_allclose(loss.g(F), g, rtol=1e-6)


def test_unknown_loss_lists_valid_names():
  with pytest.raises(ValueError, match='hinge.*least_squares.*non_saturating.*wasserstein'):
    losses.LOSSES.get('bce')


def test_gradient_penalty_of_linear_critic():
  # D(x) = sum(w * x) has gradient w everywhere, so GP = (||w|| - 1)^2 exactly.
  w = jnp.arange(12.0).reshape(1, 2, 2, 3) / 10.0
  d_fn = lambda x: jnp.sum(x * w, axis=(1, 2, 3))
  real = jnp.ones((4, 2, 2, 3))
  fake = -jnp.ones((4, 2, 2, 3))
  gp = losses.gradient_penalty(d_fn, real, fake, jax.random.PRNGKey(0))
  np.testing.assert_allclose(gp, (np.linalg.norm(np.asarray(w)) - 1.0) ** 2, rtol=1e-5)


def test_r1_penalty_of_quadratic_critic():
  # D(x) = 0.5 * sum(x^2): gradient x, so R1 = mean ||x||^2.
  d_fn = lambda x: 0.5 * jnp.sum(x ** 2, axis=(1, 2, 3))
  real = jnp.arange(16.0).reshape(2, 2, 2, 2)
  expected = np.mean(np.sum(np.asarray(real).reshape(2, -1) ** 2, axis=1))
  np.testing.assert_allclose(losses.r1_penalty(d_fn, real), expected, rtol=1e-6)


def test_attribute_cross_entropy_by_hand_skips_unspecified():
  logits = (jnp.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
            jnp.array([[0.0, 0.0, 3.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
  labels = jnp.array([[0, 2], [1, 3], [2, 1]])  # (2, 3) are 'unspecified' for (2, 3) classes
  ce = lambda row, k: -(row[k] - np.log(np.sum(np.exp(row))))
  l0, l1 = np.asarray(logits[0]), np.asarray(logits[1])
  expected = (ce(l0[0], 0) + ce(l0[1], 1) + ce(l1[0], 2) + ce(l1[2], 1)) / (3 * 2)
  got = losses.attribute_cross_entropy(logits, labels, (2, 3))
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  # All unspecified: no loss and no gradient.
  none = jnp.array([[2, 3]] * 3)
  assert float(losses.attribute_cross_entropy(logits, none, (2, 3))) == 0.0
  grads = jax.grad(lambda l: losses.attribute_cross_entropy(l, none, (2, 3)))(logits)
  assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in grads)


def test_attribute_hits_count_specified_labels_only():
  logits = (jnp.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]),
            jnp.array([[0.0, 0.0, 3.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
  labels = jnp.array([[0, 2], [0, 3], [2, 0]])  # (2, 3) are 'unspecified' for (2, 3) classes
  # Attribute 0: rows 0 (right) and 1 (wrong) are specified. Attribute 1: rows 0 (right), 2 (wrong).
  got = losses.attribute_hits(logits, labels, (2, 3))
  assert [(int(r), int(t)) for r, t in got] == [(1, 2), (1, 2)]
  none = losses.attribute_hits(logits, jnp.array([[2, 3]] * 3), (2, 3))
  assert [(int(r), int(t)) for r, t in none] == [(0, 0), (0, 0)]
