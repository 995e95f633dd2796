"""Datasets (TFDS builders) and input pipelines. Importing this package registers the builders."""
from gan.data import synthetic_products  # noqa: F401  (registers `synthetic_products`)
