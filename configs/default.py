"""Every configuration field of productgan, documented. Other configs start from this one.

Override any field on the command line, e.g. `--config.loss=hinge --config.batch_size=128`.
"""
import ml_collections


def get_config():
  config = ml_collections.ConfigDict()

  # ---- Run ----
  config.seed = 0                      # One PRNG seed for init, latents, attribute dropout, augmentation.
  config.num_train_steps = 20_000      # Generator updates (one step = d_steps_per_g_step D updates + 1 G update).
  config.batch_size = 64               # GLOBAL batch (summed over all devices and hosts); must divide by device count.

  # ---- Periodic actions (in steps; 0 disables) ----
  config.log_every_steps = 100         # Scalars (losses, D outputs, learning rates, input wait) to TensorBoard.
  config.sample_every_steps = 1000     # Attribute sample grids (EMA generator) to TensorBoard and PNG.
  config.checkpoint_every_steps = 1000 # Orbax checkpoint; the final step is always checkpointed.
  config.eval_every_steps = 0          # Quality/control metrics (see `eval`); 0 = off.
  config.max_checkpoints_to_keep = 3   # Latest checkpoints kept (the best-by-FID one is kept separately).

  # ---- Data ----
  config.data = ml_collections.ConfigDict()
  config.data.name = 'synthetic_products'  # Any TFDS name: 'synthetic_products', a catalogue built by
                                           # `python -m gan.data.catalog`, 'fashion_mnist', 'cifar10', ...
  config.data.data_dir = ml_collections.config_dict.placeholder(str)  # TFDS data dir (None = TFDS default).
  config.data.train_split = 'train'
  config.data.eval_split = 'test'
  config.data.resolution = 64          # Images are resized to this; the architecture is built for it.
  config.data.attributes = ml_collections.config_dict.placeholder(tuple)  # ClassLabel features to condition
                                       # on, in order; None = every ClassLabel feature of the dataset.
  config.data.shuffle_buffer = 10_000
  config.data.cache = True             # Cache decoded images in memory (small catalogues fit easily).
  config.data.augment = ()             # tf.data ops by name, e.g. ('flip', 'zoom(max_scale=1.1)'); see gan/data/augment.py.
  config.data.prefetch = 2             # Batches prefetched onto the devices ahead of the step; 0 = off.

  # ---- Model ----
  config.model = ml_collections.ConfigDict()
  config.model.generator = 'dcgan'     # Registry name, see gan/models/__init__.py.
  config.model.discriminator = 'dcgan'
  config.model.latent_dim = 100
  config.model.g_width = 64            # Channels of G's last hidden layer (x2 per layer towards the input).
  config.model.d_width = 64            # Channels of D's first layer (x2 per layer).
  config.model.d_norm = 'batch'        # Discriminator normalisation: 'batch' | 'spectral' | 'none'.
  config.model.conditional = True      # Condition on the dataset's attributes (CBN in G, projection in D).
  config.model.embed_dim = 128         # Attribute embedding width feeding G's conditional BatchNorm.
  config.model.latent_in_every_layer = False  # Also feed z to every conditional BatchNorm of G (BigGAN's
                                       # skip-z), not only to the first layer: keeps z in charge of variety.
  config.model.aux_classifier = True   # D also classifies each attribute (AC-GAN heads); used by
                                       # aux_classifier_weight. Conditional models only.
  config.model.aux_head_features = 'last'  # dcgan: what those heads read: 'last' (the pooled 4x4 map),
                                       # 'all' (the pooled maps of every layer: fine texture such as pattern)
                                       # or 'own' (a small conv net of their own beside D's trunk).
  config.model.aux_net_width = 16      # dcgan, 'own': first-stage channels of that net (x1, x2, x4, x8).
  config.model.upsample_impl = 'default'    # Transposed-conv implementation (speed only; same parameters).
  config.model.downsample_impl = 'default'  # Strided-conv implementation (speed only; same parameters).
  # biggan only (gan/models/biggan.py; G and D both): width, per-size multipliers, attention, dtype.
  config.model.ch = 32                 # Base width: a block's channels are ch * its multiplier.
  config.model.channel_multipliers = ml_collections.config_dict.placeholder(tuple)  # One per size 4, 8,
                                       # ..., resolution (G from 4x4 up, D in reverse); None = default,
                                       # min(16, resolution / size): (16, 8, 4, 2, 1) at 64 px.
  config.model.attention_resolution = 0  # Self-attention block at this feature size (e.g. 32); 0 = off.
  config.model.dtype = 'float32'       # 'bfloat16': bf16 activations and convs (GPU/TPU); parameters, BN
                                       # statistics, losses and optimiser state stay float32.
                                       # biggan's G splits latent_dim into 1 + log2(resolution) - 2 chunks
                                       # (4x4 map + one per up-block); embed_dim is its shared embedding.

  # ---- Loss ----
  config.loss = 'non_saturating'       # 'non_saturating' | 'hinge' | 'wasserstein' | 'least_squares'.
  config.gp_weight = 10.0              # Gradient-penalty weight (used by 'wasserstein', i.e. WGAN-GP).
  config.r1_weight = 0.0               # R1 penalty on real images (any loss); 0 = off.
  config.aux_classifier_weight = 1.0   # AC-GAN auxiliary loss: D's heads learn the real images'
                                       # attributes (cross-entropy) and G is pushed to make D read the
                                       # requested ones on its fakes. Sharpens control; 0 = off.
  config.mode_seeking_weight = 0.0     # Mode-seeking regulariser (Mao et al. 2019): G maximises the image
                                       # distance over latent distance of two fakes of one condition
                                       # (each device pairs its batch halves). Against one image per condition.
  config.mode_seeking_pool = 1         # Measure that image distance on images average-pooled by this factor
                                       # (>1: reward variety in shape, placement and tone, not fine texture).
  config.d_steps_per_g_step = 1
  config.attribute_dropout = 0.2       # Probability that each attribute is replaced by 'unspecified' in
                                       # training, so users can fix some attributes and leave the rest to G.
  config.diffaug = ''                  # DiffAugment policy inside the step, e.g. 'color,translation,cutout'.

  # ---- Optimisers (Adam, one per network) ----
  config.optim = ml_collections.ConfigDict()
  config.optim.g_lr = 2e-4
  config.optim.d_lr = 2e-4
  config.optim.g_b1 = 0.5
  config.optim.g_b2 = 0.999
  config.optim.d_b1 = 0.5
  config.optim.d_b2 = 0.999
  config.optim.aux_lr_scale = 1.0      # D's attribute heads (and their own net) learn at this times d_lr.
  config.optim.warmup_steps = 0        # Linear learning-rate warm-up (both networks).
  config.optim.decay_fraction = 0.0    # Linear decay of both learning rates to 0 over this last fraction
                                       # of num_train_steps (0 = constant after the warm-up).
  config.ema_decay = 0.999             # EMA of G's weights; the EMA generator is used for all sampling.
  config.ema_start_step = 0            # EMA copies G exactly until this step.

  # ---- Sampling during training ----
  config.sample = ml_collections.ConfigDict()
  config.sample.standing_stats_batches = 4  # Batches used to re-estimate BatchNorm statistics for the EMA G.
  config.sample.grid_attributes = ('category', 'colour')  # Rows, columns of the main sample grid (rows x
                                       # every other attribute too), or (rows, columns) pairs: exactly those grids.

  # ---- Evaluation (gan/evaluation/; every eval_every_steps and python -m gan.evaluate) ----
  config.eval = ml_collections.ConfigDict()
  # Evaluators that run, by name (registry in gan/evaluation/evaluators.py, which says how to read
  # their eval/* scalars): fid (+ kid), precision_recall, memorisation, inception_fid (with
  # inception_weights), intra_fid, diversity (intra-condition), control (+ classifier_acc).
  config.eval.metrics = ('fid', 'precision_recall', 'memorisation', 'inception_fid', 'intra_fid',
                         'diversity', 'control')
  config.eval.num_samples = 2000       # Generated images for FID/KID/precision/recall; also the size of the
                                       # held-out real set (capped at the eval split). Compare FIDs at equal counts.
  config.eval.batch_size = 250         # Generation / feature-extraction batch.
  config.eval.seed = 0                 # Fixes latents, labels and real subsets, so evaluations differ only by G.
  config.eval.control_samples_per_value = 50  # Control set: images per attribute value (that attribute alone).
  config.eval.control_any = 'auto'     # The control set's other attributes: 'catalogue' (drawn from the training
                                       # labels, as gan.sample does by default), 'unspecified' (the model's own
                                       # label), 'auto' = catalogue. Dropout-trained runs also report the latter.
  config.eval.kid_subsets = 100        # KID: random subsets averaged (their spread gives eval/kid_stderr).
  config.eval.kid_subset_size = 1000   # KID: images per subset (clipped to the smaller set).
  config.eval.pr_k = 3                 # Precision/recall: k of the k-NN manifold radii.
  config.eval.max_train_examples = 20_000  # Training images for the classifier, the memorisation reference
                                       # and the real-vs-real floor (a uniform random subset if larger).
  # The domain feature extractor: an attribute classifier trained on the training split, cached in
  # classifier_dir (default <workdir>/eval_classifier), retrained when the dataset or these settings change.
  config.eval.classifier_dir = ml_collections.config_dict.placeholder(str)
  config.eval.classifier_steps = 0     # 0 = auto: ~10 epochs, clipped to [200, 1500] (1500 at 20k images, batch 128).
  config.eval.classifier_batch_size = 128
  config.eval.classifier_width = 32    # Channels of the classifier's first stage (x1, x2, x4, x8 per stage).
  config.eval.classifier_feature_dim = 256  # Feature space of FID/KID/precision/recall/memorisation.
  config.eval.classifier_learning_rate = 2e-3
  config.eval.classifier_flip = True   # Horizontal flips while training it; off if an attribute is left/right.
  config.eval.diversity_conditions = 8  # Intra-condition diversity (eval/diversity/*): this many full conditions
  config.eval.diversity_samples = 24   # ... with this many generated and real images each; 0 conditions = off.
  config.eval.best_metric = 'auto'     # best_checkpoint/ minimises it; auto = intra_fid/mean if conditional, else fid.
  config.eval.min_best_diversity = 0.3 # Never keep as best a checkpoint with eval/diversity/pixel below this.
  config.eval.inception_weights = ml_collections.config_dict.placeholder(str)  # Local Inception-V3 .npz for an
                                       # extra, literature-comparable eval/inception_fid (none: a note, rest runs).
  return config
