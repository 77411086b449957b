"""Step 4 of the workshop, export: checkpoint -> ONNX graphs -> validated model package. `lm` exports,
validates (through aigc_studio.runtime, the code the app uses; see `validate_lm`) and writes a text-lm
package; `fused` writes the decoder graph with onnxruntime's fused operators (the default for the
configurations it supports); `gan` writes an image-gan package; `repackage` re-exports an existing
package from the weights in its own fp32 graph. The quantised variants come from `export.quant`.
"""
