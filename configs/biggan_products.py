"""BigGAN-class ResNet G and D (gan/models/biggan.py) on the embedded synthetic product catalogue,
64x64, hinge loss, EMA generator. Sized to finish its default run in about 30 minutes on 2 CPU
cores (evaluation included) on this project's machine (matmul roofline ~180 GFLOP/s).

The peer-sized network (ch 32, batch 64: the PyTorch peer's ~5 s/step) sees too few updates in 30
CPU-minutes, so this run is narrower (ch 16, 1/4 of the FLOPs) and takes smaller steps (batch 32),
as dcgan_products.py does. `experiments/benchmark.py --model biggan` ([default_run]) measured 0.27
steps/s while the 2 cores were shared ~6-fold (roofline 13 of ~180 GFLOP/s; the peer ran 1.6
images/s against its ~12 alone): about 2 steps/s on a quiet machine, so 2500 steps + evaluation is
an estimate of 30 minutes, to be re-measured on a quiet machine.
"""
from configs import default


def get_config():
  config = default.get_config()
  config.model.generator = config.model.discriminator = 'biggan'
  config.model.d_norm = 'spectral'        # biggan's D is always spectrally normalised.
  config.model.ch = 16
  config.model.latent_dim = 120           # 5 chunks of 24: the 4x4 map and 4 up-blocks.
  config.model.embed_dim = 64             # Shared attribute embedding.
  config.model.attention_resolution = 0
  config.batch_size = 32
  config.num_train_steps = 2500
  config.loss = 'hinge'
  # BigGAN's two-time-scale Adam: D learns 4x faster, no first-moment momentum.
  config.optim.g_lr = 1e-4
  config.optim.d_lr = 4e-4
  config.optim.g_b1 = config.optim.d_b1 = 0.0
  config.optim.g_b2 = config.optim.d_b2 = 0.999
  # As dcgan_products.py: mostly full labels (the sampling tools feed full labels), an EMA
  # horizon of ~200 steps that follows a generator still improving at the end of a short run.
  config.attribute_dropout = 0.1
  config.ema_decay = 0.995
  config.log_every_steps = 50
  config.sample_every_steps = 500
  config.checkpoint_every_steps = 500
  config.eval_every_steps = 1250
  config.eval.num_samples = 1000
  config.eval.classifier_steps = 300      # A small judge that trains in minutes on a CPU.
  config.eval.classifier_width = 16
  config.eval.classifier_batch_size = 64
  return config
