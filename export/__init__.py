"""The model workshop: data, models, training, ONNX export and evaluation (torch lives here only).

It runs from a checkout of the repository (it is not installed with the app): `python -m export.<step>.<tool>`
from the repository root. The pipeline, in order:

    data/    registry packages -> clean corpora and image sets, eval texts, the tokenizer
             (python -m export.data.text, .images, .brown, .tokenizer)
    models/  the model definitions: TransformerLM, DCGAN, StyleGAN-style generator, DiffAugment
    train/   checkpoints: train one (python -m export.train.lm, .gan) or import pretrained weights
             (python -m export.train.from_gguf)
    onnx/    checkpoint -> ONNX graphs -> validated model package (python -m export.onnx.lm, .gan,
             .repackage); fused.py writes the LM graph with onnxruntime's fused operators
    quant/   the quantised graph variants of a package (int8, q8, q4), used by onnx/
    eval/    what `aigc-studio eval` measures against: eval texts (python -m export.eval.sets) and the
             image-features package of domain FID (python -m export.eval.fid)

Importing aigc_studio first turns onnxruntime's telemetry off before any module here imports it.
"""

import aigc_studio  # noqa: F401
