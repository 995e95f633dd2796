"""productgan: controllable product image generation with JAX/Flax GANs."""
from gan import quiet as _quiet

# Before any gan module imports TensorFlow or JAX, whose C++ logging reads the environment once:
# `python -m gan.sample` (and the other tools) start quiet (gan/quiet.py).
_quiet.quiet_libraries()
