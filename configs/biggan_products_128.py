"""BigGAN-class networks at 128x128 for a GPU or TPU: BigGAN-128's widths (multipliers
16, 16, 8, 4, 2, 1) at ch 64, self-attention at 64x64, batch 256, bfloat16 activations and convs
(parameters, BatchNorm statistics, losses and optimiser state stay float32).

On the embedded catalogue (rendered at 64x64, so upsampled here) it is a scale test; with your own
photos built at 128 px (`python -m gan.data.catalog build ...`) pass --config.data.name=catalog
--config.data.data_dir=DIR as with configs/catalog.py. Far too heavy for a CPU.
"""
from configs import biggan_products


def get_config():
  config = biggan_products.get_config()
  config.data.resolution = 128
  config.model.ch = 64
  config.model.latent_dim = 120           # 6 chunks of 20: the 4x4 map and 5 up-blocks.
  config.model.embed_dim = 128
  config.model.attention_resolution = 64
  config.model.dtype = 'bfloat16'
  config.batch_size = 256
  config.num_train_steps = 50_000
  config.ema_decay = 0.9999
  config.ema_start_step = 1000
  config.log_every_steps = 100
  config.sample_every_steps = 2500
  config.checkpoint_every_steps = 2500
  config.eval_every_steps = 5000
  config.eval.num_samples = 5000
  config.eval.classifier_steps = 0        # auto: ~10 epochs of the training split.
  config.eval.classifier_width = 32
  config.eval.classifier_batch_size = 128
  return config
