"""Datasets (TFDS builders) and input pipelines. Importing this package registers the builders."""
