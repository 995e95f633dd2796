"""Control tools: steer a trained generator (python -m gan.sample, python -m gan.invert).

loading.py     load_run(workdir, checkpoint) -> Run (config, vocabulary, networks, GANState)
latents.py     seeded and truncated latents, slerp
generation.py  sample by attribute, sweep an attribute, interpolate, SeFa previews and edits
sefa.py        closed-form edit directions from the weights acting on z (the model interface)
inversion.py   real photo -> latent + attributes (batched restarts, soft attributes)
postprocess.py Pillow post-processing registry
output.py      grids, per-image PNGs, GIFs
cli.py         what the two commands share
prompt.py      free text ("crimson striped handbag") -> attribute values of a run's vocabulary
"""
