"""Step 4b of the workshop, quantisation: the smaller graph variants of a package, made from its fp32
graph. `formats` names the variants (int8: onnxruntime's dynamic quantisation; q8/q4: weight-only
blocks) and makes one; `blocks` is the numpy block quantiser behind q8/q4 (MatMulNBits and
GatherBlockQuantized). The export step validates every variant like the fp32 graph.
"""
