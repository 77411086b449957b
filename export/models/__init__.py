"""Step 2 of the workshop, models: one model per file, readable top to bottom. `lm` is the Transformer
language model (the seed's layout and a Llama-style one, with the cached forward path the export uses),
`dcgan` and `stylegan` the image generators and their discriminators and losses, `diffaug` DiffAugment
for GAN training on small data sets. Nothing here reads files or writes graphs.
"""
