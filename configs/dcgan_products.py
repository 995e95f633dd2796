"""DCGAN (Radford et al. 2016), 64x64, batch-norm D, non-saturating loss, conditioned on the
embedded synthetic product catalogue's category/colour/pattern/material. About 30 min of training
on 2 CPU cores (~3.5 steps/s), plus a few minutes for the dataset build, the judge and three
evaluations; a machine with half the matmul throughput (RESULTS.md session 6's) takes twice that.

Tuned for that budget: within a fixed number of CPU-minutes, GAN quality grows with the number of
updates, so this run takes small steps. Batch 32 and a half-width discriminator (D width 32: a
quarter of its FLOPs, 0.66 M parameters) run 4 steps/s where the classic batch-64, width-64 pair
runs 1.1, so 6300 steps fit where 1700 did. The generator keeps the classic width 64.
Measured (experiments/RESULTS.md, session 11, two seeds, step 6300): FID 5.9 / 6.6, variety 1.07-1.14
of the catalogue's within a condition, control one-requested category 1.00, colour 1.00,
pattern 0.90-0.95, material 0.70-0.73. `experiments/benchmark.py` still measures the
classic DCGAN for speed.
"""
from configs import default


def get_config():
  config = default.get_config()
  config.num_train_steps = 6300
  config.batch_size = 32
  # The newest catalogue (1.1.0): category, colour, pattern and material.
  config.data.name = 'synthetic_products'
  config.model.d_width = 32
  # Fewer dropped labels than the default 0.2: the sampling tools feed full labels (left-out
  # attributes are drawn from the catalogue), so most training should see full labels; 0.1 still
  # teaches the model's own "unspecified" label (--any=unspecified).
  config.attribute_dropout = 0.1
  # Variety within a condition ("twenty variants of this mug"): z also modulates every layer, and
  # the mode-seeking term makes two latents of one condition give different images. Without them
  # the generator drew one image per condition (experiments/RESULTS.md, "Diversity").
  config.model.latent_in_every_layer = True
  config.mode_seeking_weight = 1.0
  # AC-GAN's own balance, weight 1 per attribute: the AC loss is a mean over the 4 attributes, so
  # 1.0 gave each a quarter of it. 4.0 raised pattern and material control in both seeds
  # (experiments/RESULTS.md, session 11); D's heads still learn material slowly (even at 4.0 they
  # read it on real images 0.38 of the time at step 2100, chance 0.25).
  config.aux_classifier_weight = 4.0
  # EMA horizon ~200 steps (6,400 images): long enough to average out step noise, short enough
  # to follow a generator that still improves quickly at the end of a short run.
  config.ema_decay = 0.995
  # Both learning rates fall linearly to 0 over the last third: at a constant rate FID was best at
  # step 2100 and worse by 4200 in two seeds (experiments/RESULTS.md, session 9).
  config.optim.decay_fraction = 1 / 3
  config.log_every_steps = 100
  config.sample_every_steps = 1050
  config.checkpoint_every_steps = 1050
  config.eval_every_steps = 2100          # Three times (best by intra-FID kept, collapse refused).
  config.eval.num_samples = 1000
  # A small judge that trains in minutes on a CPU. Material needs the steps: on held-out renders
  # 300 steps read it 0.72 of the time (and pattern 0.86), 1000 steps 0.94 (pattern 0.99).
  config.eval.classifier_steps = 1500
  config.eval.classifier_width = 16
  config.eval.classifier_batch_size = 64
  return config
