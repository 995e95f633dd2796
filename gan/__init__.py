"""productgan: controllable product image generation with JAX/Flax GANs."""
