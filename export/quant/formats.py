"""The quantised graph variants of a text-lm package, made from its fp32 graph.

`QUANT_FORMATS` names them (and is what a manifest says of each); `quantize` makes one. int8 is
onnxruntime's dynamic quantisation; q8 and q4 are weight-only blocks from `export.quant.blocks`.
`calibration_batches` picks the sample an int8 KV cache's scales are fitted on (`export.onnx.fused`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def quantize_int8(src: Path, dst: Path, per_channel: bool = False,
                  op_types: Sequence[str] = ("MatMul", "Gather"), exclude: Sequence[str] = ()) -> None:
    """Dynamic int8 quantisation of the weights of `op_types` nodes (except the nodes named in
    `exclude`), per tensor or per output channel."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # the quantiser logs a pre-processing hint at WARNING

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8,
                     op_types_to_quantize=list(op_types), per_channel=per_channel,
                     nodes_to_exclude=list(exclude),
                     extra_options={"DefaultTensorType": 1})  # float: contrib-op outputs have no inferred type


QUANT_FORMATS = {  # variant -> how its graph is made
    "int8": "dynamic int8 quantisation of MatMul and Gather weights (onnxruntime quantize_dynamic)",
    "q8": "weight-only 8-bit MatMulNBits, asymmetric blocks of 128 (uint8 zero points; a smaller power of "
          "two where the input size asks), int8 compute; embedding tables 8-bit symmetric blocks read by "
          "GatherBlockQuantized, a tied embedding/output matrix stored once",
    "q4": "weight-only 4-bit MatMulNBits, asymmetric blocks of 32 (default zero point plus a float16 "
          "offset per block: a GGUF Q4_1 block maps exactly), int8 compute; a tied embedding/output "
          "matrix stored once at 8 bits (symmetric blocks of 64, read by GatherBlockQuantized and MatMulNBits)",
}


KV_INT8_NOTE = ("; int8 KV cache (per layer, head and channel scales calibrated on held-out text, "
                "GroupQueryAttention PER_CHANNEL)")
CALIBRATION_TOKENS = 4096
Q8_BLOCK = 128  # q8's block: bigger blocks run faster in MatMulNBits' int8 kernel (docs/design.md)


def calibration_batches(ids: Sequence[int], block_size: int, tokens: int = CALIBRATION_TOKENS) -> list[list[int]]:
    """The last `tokens` ids (at most half of them) in windows of at most 512: the sample an int8 KV
    cache's scales are calibrated on."""
    ids = list(ids)
    n = max(1, min(tokens, len(ids) // 2)) if len(ids) > 1 else len(ids)
    tail = ids[len(ids) - n:]
    step = min(512, block_size)
    return [tail[i:i + step] for i in range(0, len(tail), step)]


def quantize(quant: str, src: Path, dst: Path, *, per_channel: bool = False,
             op_types: Sequence[str] = ("MatMul", "Gather"), exclude: Sequence[str] = ()) -> None:
    if quant == "int8":
        quantize_int8(src, dst, per_channel=per_channel, op_types=op_types, exclude=exclude)
    elif quant == "q4":
        from export.quant.blocks import quantize_graph

        quantize_graph(src, dst, bits=4, block_size=32, tied_bits=8, tied_block_size=64, exclude=exclude)
    elif quant == "q8":  # at 8 bits an integer zero point loses nothing that a float one would keep
        from export.quant.blocks import quantize_graph

        quantize_graph(src, dst, bits=8, block_size=Q8_BLOCK, tied_bits=8, tied_block_size=Q8_BLOCK,
                       zero_points="uint8", gather_bits=8, exclude=exclude)
    else:
        raise ValueError(f"unknown quantisation {quant!r} (known: {', '.join(QUANT_FORMATS)})")
