"""Optional post-processing of generated images with Pillow filters: a small registry of named ops.

`--postprocess denoise,sharpen,upscale2` applies the ops left to right to every image. They only
change how the output looks; nothing here feeds back into the model.
"""
from typing import Callable, List, Sequence, Union

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from gan import spec as spec_lib
from gan.registry import Registry

POSTPROCESS = Registry('postprocess op')
Op = Callable[[Image.Image], Image.Image]


@POSTPROCESS.register('denoise')
def _denoise(image: Image.Image) -> Image.Image:
  """3x3 median filter: removes GAN speckle while keeping edges."""
  return image.filter(ImageFilter.MedianFilter(3))


@POSTPROCESS.register('smooth')
def _smooth(image: Image.Image) -> Image.Image:
  return image.filter(ImageFilter.SMOOTH)


@POSTPROCESS.register('sharpen')
def _sharpen(image: Image.Image) -> Image.Image:
  """Unsharp mask, mild enough for 64-pixel images."""
  return image.filter(ImageFilter.UnsharpMask(radius=1, percent=120, threshold=2))


@POSTPROCESS.register('autocontrast')
def _autocontrast(image: Image.Image) -> Image.Image:
  return ImageOps.autocontrast(image, cutoff=1)


def _upscale(factor: int) -> Op:
  def upscale(image: Image.Image) -> Image.Image:
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.LANCZOS)
  upscale.__doc__ = f'Lanczos upscaling by {factor}x.'
  return upscale


for _factor in (2, 4, 8):
  POSTPROCESS.register(f'upscale{_factor}')(_upscale(_factor))


SPEC = spec_lib.OpSpec(POSTPROCESS, example='denoise,sharpen,upscale2')


def parse(spec: Union[str, Sequence[str], None]) -> List[str]:
  """'sharpen,upscale2' (or a list) -> validated op names (gan/spec.py); an unknown one lists the
  valid names."""
  return SPEC.names(spec)


def apply(images: np.ndarray, spec: Union[str, Sequence[str], None]) -> np.ndarray:
  """uint8 [n, H, W, 3] -> uint8 [n, H', W', 3] after the ops in `spec` (H' > H when upscaling)."""
  ops = [POSTPROCESS.get(name) for name in parse(spec)]
  images = np.asarray(images)
  if not ops:
    return images
  out = []
  for image in images:
    pil = Image.fromarray(image)
    for op in ops:
      pil = op(pil)
    out.append(np.asarray(pil.convert('RGB'), np.uint8))
  return np.stack(out)
