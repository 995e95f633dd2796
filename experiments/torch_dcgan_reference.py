"""The PyTorch peer: the classic DCGAN (Radford et al. 2016, 64x64) training step on CPU.

Same networks, loss, optimiser and step structure as ../shared/bench/torch_dcgan_ref.py (kept here so
experiments/benchmark.py can measure it in the same run). Requires the optional `bench` extra.
"""
import time


def make_torch_step(batch: int = 64):
  """One full training step (D update, then G update) of the reference, as a callable."""
  import torch
  import torch.nn as nn
  torch.manual_seed(0)
  nz, ngf, ndf = 100, 64, 64
  G = nn.Sequential(
      nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
      nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
      nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
      nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
      nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh())
  D = nn.Sequential(
      nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
      nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
      nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
      nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, True),
      nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))
  crit = nn.BCEWithLogitsLoss()
  opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
  opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
  real = torch.rand(batch, 3, 64, 64) * 2 - 1
  ones, zeros = torch.ones(batch), torch.zeros(batch)

  def step():
    D.zero_grad()
    z = torch.randn(batch, nz, 1, 1)
    fake = G(z)
    loss_d = crit(D(real).view(-1), ones) + crit(D(fake.detach()).view(-1), zeros)
    loss_d.backward()
    opt_d.step()
    G.zero_grad()
    loss_g = crit(D(fake).view(-1), ones)
    loss_g.backward()
    opt_g.step()

  return step


def torch_images_per_second(batch: int = 64, steps: int = 10, warmup: int = 3) -> float:
  step = make_torch_step(batch)
  for _ in range(warmup):
    step()
  t = time.perf_counter()
  for _ in range(steps):
    step()
  return steps * batch / (time.perf_counter() - t)
