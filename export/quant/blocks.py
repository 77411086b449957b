"""Weight-only block quantisation of an exported decoder graph, in numpy (no torch, no quantiser tool).

Every MatMul whose weight is an initializer becomes onnxruntime's `MatMulNBits`: the weight's
columns (output features) are cut into blocks of `block_size` input weights, each block stored as
unsigned `bits`-bit codes with one fp32 scale and one integer zero point, `w = (q - z) * s`.

The block's range is not simply its min and max: a small grid of shrunken ranges is tried and the
one with the least squared error kept, then the scale is refitted by least squares for the chosen
codes (a cheap version of what GPTQ/HQQ-style quantisers do, without calibration data).

A tied embedding (the same matrix W [V, H] feeds the token Gather and, transposed, the output
MatMul) is quantised once: the output layer's MatMulNBits and a `GatherBlockQuantized` for the
embedding read the same packed bytes, scales and zero points, so the file holds W one time at
4 bits (SmolLM2: 49152 x 576 weights in 16 MB instead of 2 x 113 MB in fp32).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SHRINK_GRID = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7)


def quantize_rows(w: np.ndarray, bits: int = 4, block_size: int = 32, *, symmetric: bool = False,
                  float_zero: bool = True, grid: tuple[float, ...] = SHRINK_GRID,
                  refit: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantise each row of `w` [N, K] in blocks of `block_size` along K (K a multiple of it).
    Returns codes q uint8 [N, K/block, block], scales float32 [N, K/block] and zero points [N, K/block]
    with `w ~ (q - z) * s`:
    - `symmetric`: scale max|w| / (2^(bits-1) - 1), zero point 2^(bits-1) (uint8), llama.cpp's Q8_0;
    - else asymmetric, the range per block picked from `grid` by least squared error, then scale and
      offset refitted by least squares for the chosen codes; zero points float32 (`float_zero`, which
      maps a GGUF Q4_1 block exactly) or uint8 integers (what GatherBlockQuantized takes)."""
    n, k = w.shape
    if k % block_size:
        raise ValueError(f"input size {k} is not a multiple of the block size {block_size}")
    qmax = (1 << bits) - 1
    x = w.astype(np.float32).reshape(n, k // block_size, block_size)
    if symmetric:
        half = 1 << (bits - 1)
        s = np.maximum(np.abs(x).max(-1) / (half - 1), 1e-12).astype(np.float32)
        q = np.clip(np.round(x / s[..., None]) + half, 0, qmax)
        return q.astype(np.uint8), s, np.full(s.shape, half, np.uint8)
    lo, hi = x.min(-1), x.max(-1)
    if not float_zero:  # an integer zero point: the range must hold 0 for zero to stay exact
        lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    mid = (lo + hi) / 2

    def codes(s, z):
        return np.clip(np.round(x / s[..., None] + z[..., None]), 0, qmax)

    def offset(s, a_lo):
        z = -a_lo / s
        return z if float_zero else np.clip(np.round(z), 0, qmax)

    best_err = np.full(lo.shape, np.inf, dtype=np.float32)
    best_s, best_z = np.ones_like(lo), np.zeros_like(lo)
    for a in grid:  # shrink the range about its middle (float zero) or about 0 (integer zero)
        a_lo = mid + (lo - mid) * a if float_zero else lo * a
        a_hi = mid + (hi - mid) * a if float_zero else hi * a
        s = np.maximum((a_hi - a_lo) / qmax, 1e-12)
        z = offset(s, a_lo)
        err = (((codes(s, z) - z[..., None]) * s[..., None] - x) ** 2).sum(-1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_s, best_z = np.where(better, s, best_s), np.where(better, z, best_z)
    s, z = best_s, best_z
    for _ in range(refit):  # least squares x ~ s*q + c for the codes (c = -z*s), then new codes
        q = codes(s, z)
        if float_zero:
            qm, xm = q.mean(-1), x.mean(-1)
            var = ((q - qm[..., None]) ** 2).sum(-1)
            s_new = np.where(var > 0, ((q - qm[..., None]) * (x - xm[..., None])).sum(-1) / np.maximum(var, 1e-12), s)
            s_new = np.maximum(s_new, 1e-12)
            z = np.where(var > 0, qm - xm / s_new, z)
            s = s_new
        else:
            c = q - z[..., None]
            den = (c * c).sum(-1)
            s = np.maximum(np.where(den > 0, (c * x).sum(-1) / np.maximum(den, 1e-12), s), 1e-12)
    q = codes(s, z)
    return q.astype(np.uint8), s.astype(np.float32), z.astype(np.float32 if float_zero else np.uint8)


def dequantize_rows(q: np.ndarray, s: np.ndarray, z: np.ndarray) -> np.ndarray:
    return ((q.astype(np.float32) - z[..., None]) * s[..., None]).reshape(q.shape[0], -1)


def pack(q: np.ndarray, bits: int) -> np.ndarray:
    """Pack codes along the last axis, low nibble first at 4 bits (onnxruntime's layout)."""
    if bits == 8:
        return q.astype(np.uint8)
    if q.shape[-1] % 2:
        q = np.concatenate([q, np.zeros(q.shape[:-1] + (1,), np.uint8)], axis=-1)
    return (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)


def block_for(k: int, block_size: int) -> int | None:
    """The largest block of at most `block_size` (a power of two, at least 16, as onnxruntime's block
    operators take) that divides the input size `k`; None when there is none."""
    b = 1 << (max(16, block_size).bit_length() - 1)
    while b >= 16:
        if k % b == 0:
            return b
        b //= 2
    return None


def quantize_graph(src: Path, dst: Path, bits: int = 4, block_size: int = 32, accuracy_level: int = 4,
                   tied_bits: int | None = 8, tied_block_size: int = 32, half_params: bool = True,
                   zero_points: str = "offset", gather_bits: int | None = None,
                   exclude: Sequence[str] = ()) -> dict[str, int]:
    """Rewrite the graph at `src` with every weight MatMul as MatMulNBits (`bits`, blocks of `block_size`,
    asymmetric). When the output layer is tied to the token embedding, that one matrix is quantised to
    `tied_bits` in blocks of `tied_block_size` (8 bits: symmetric, like the Q8_0 embedding of a GGUF;
    4 bits: asymmetric) and shared with a GatherBlockQuantized for the embedding; `tied_bits=None`
    leaves both in float. `zero_points` is "offset" (a float zero point per block, realised as the
    default zero point plus a per-block offset added by a small MatMul on the block sums of the input,
    because onnxruntime's MatMulNBits runs its fast integer kernels only with uint8 zero points) or
    "uint8" (integer zero points, whose ranges must hold 0). `half_params` stores scales and offsets as
    float16 with a Cast to float32 (folded when onnxruntime loads the graph), which halves their share of
    the file. `gather_bits=8` also stores the other embedding tables (untied token embedding, learned
    positions) as symmetric 8-bit blocks read by GatherBlockQuantized. A block size that does not divide
    a matrix's input size falls back to the largest power of two that does (`block_for`). A weight may
    be an initializer or a Transpose of one (a tied matrix after `export.onnx.lm_graph.dedupe_tied_weights`).
    Nodes named in `exclude` keep their float weights. Writes `dst`; returns how many nodes of each kind
    were replaced."""
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    g = model.graph
    rw = _Rewrite(_Weights(g), bits=bits, block_size=block_size, accuracy_level=accuracy_level,
                  tied_bits=tied_bits, tied_block_size=tied_block_size, half_params=half_params,
                  offset_zero=zero_points == "offset", exclude=set(exclude))
    for node in g.node:
        w_name = node.input[1] if node.op_type == "MatMul" else ""
        if w_name and node.name not in rw.exclude and rw.weights.is_float_matrix(w_name):
            rw.matmul(node, w_name)
    if gather_bits == 8:  # the other embedding tables: symmetric 8-bit blocks
        for data, gn in rw.weights.gathers.items():
            rw.gather(data, gn)
    _replace_nodes(g, rw)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))
    return rw.counts


class _Weights:
    """The graph's 2-D float weights: initializers, and Transposes of them (W^T given as Transpose(W))."""

    def __init__(self, g) -> None:
        import onnx

        self.inits = {i.name: i for i in g.initializer}
        inits = self.inits
        # a Transpose of a 2-D initializer counts as a weight too (its output name -> W's name)
        self.transposed = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Transpose"
                           and n.input[0] in inits and len(inits[n.input[0]].dims) == 2
                           and [a.ints for a in n.attribute if a.name == "perm"] in ([[1, 0]], [])}
        self.dims = {**{name: tuple(i.dims) for name, i in inits.items()},
                     **{out: tuple(inits[w].dims[::-1]) for out, w in self.transposed.items()}}
        self._float = onnx.TensorProto.FLOAT
        self.gathers = {n.input[0]: n for n in g.node if n.op_type == "Gather" and self.is_float_matrix(n.input[0])}
        self.arrays: dict[str, np.ndarray] = {}

    def is_float_matrix(self, name: str) -> bool:
        init = self.inits.get(self.transposed.get(name, name))
        return init is not None and len(init.dims) == 2 and init.data_type == self._float

    def array(self, name: str) -> np.ndarray:
        from onnx import numpy_helper

        if name not in self.arrays:
            self.arrays[name] = (numpy_helper.to_array(self.inits[self.transposed[name]]).T
                                 if name in self.transposed else numpy_helper.to_array(self.inits[name]))
        return self.arrays[name]


class _Rewrite:
    """The rewrite under way: new initializers, new nodes placed first (Casts, Reshapes of shared bytes)
    and, per replaced node name, the nodes that take its place."""

    AXIS_LAST = "block_sum_axis"

    def __init__(self, weights: _Weights, *, bits: int, block_size: int, accuracy_level: int,
                 tied_bits: int | None, tied_block_size: int, half_params: bool, offset_zero: bool,
                 exclude: set[str]) -> None:
        from onnx import numpy_helper

        self.weights = weights
        self.bits, self.block_size, self.accuracy_level = bits, block_size, accuracy_level
        self.tied_bits, self.tied_block_size = tied_bits, tied_block_size
        self.half_params, self.offset_zero, self.exclude = half_params, offset_zero, exclude
        self.new_nodes: list = []
        self.new_inits: list = [numpy_helper.from_array(np.asarray([-1], np.int64), self.AXIS_LAST)]
        self.replaced: dict[str, list] = {}
        self.counts = {"MatMulNBits": 0, "GatherBlockQuantized": 0}
        self.block_sums: set[str] = set()
        self.tied_gathers: set[str] = set()

    def param(self, name: str, arr: np.ndarray) -> None:
        """A scale or offset initializer: float16 with a Cast to float32 when `half_params`."""
        import onnx
        from onnx import helper, numpy_helper

        if self.half_params and arr.dtype == np.float32:
            self.new_inits.append(numpy_helper.from_array(arr.astype(np.float16), name + "_fp16"))
            self.new_nodes.append(helper.make_node("Cast", [name + "_fp16"], [name], to=onnx.TensorProto.FLOAT,
                                                   name=name + "_cast"))
        else:
            self.new_inits.append(numpy_helper.from_array(arr, name))

    def matmul(self, node, w_name: str) -> None:
        """Replace one weight MatMul by MatMulNBits (and its tied embedding Gather, if any)."""
        from onnx import helper, numpy_helper

        wts = self.weights
        k, n = wts.dims[w_name]
        wt = wts.array(w_name).T  # [N, K]: one row per output feature
        tied = next((gname for gname in wts.gathers if gname not in self.tied_gathers and wts.dims[gname] == (n, k)
                     and np.array_equal(wts.array(gname), wt)), None)
        nbits, block = ((self.tied_bits, block_for(k, self.tied_block_size)) if tied
                        else (self.bits, block_for(k, self.block_size)))
        if nbits is None or block is None:
            return
        if tied:
            self.tied_gathers.add(tied)
        symmetric = bool(tied) and nbits == 8
        offset = not tied and self.offset_zero
        q, s, z = quantize_rows(wt, nbits, block, symmetric=symmetric, float_zero=offset)
        base = tied or w_name
        packed = pack(q, nbits)  # [N, nb, block*bits/8]
        b_name, s_name, z_name = f"{base}_q{nbits}", f"{base}_scales", f"{base}_zero_points"
        params = [(s_name, s)]
        if offset:  # w = s*(q - z) = s*(q - 2^(bits-1)) + o: the default zero point and an offset per block
            o_name = f"{base}_block_offsets"
            params.append((o_name, np.ascontiguousarray((s * ((1 << (nbits - 1)) - z)).T)))  # [nb, N]
        elif not symmetric:
            params.append((z_name, pack(z, nbits)))  # uint8, packed as [N, ceil(nb*bits/8)]
        extra = [z_name] if len(params) > 1 and not offset else []
        for p_name, arr in params:
            self.param(p_name, arr)
        if tied:
            b_input = self._tied_gather(tied, packed, b_name, s_name, extra, block, nbits)
        else:
            self.new_inits.append(numpy_helper.from_array(packed, b_name))
            b_input = b_name
        x_name, y_name = node.input[0], node.output[0]
        mm = helper.make_node(
            "MatMulNBits", [x_name, b_input, s_name, *extra], [y_name + ("_codes" if offset else "")],
            name=node.name + "_q", domain="com.microsoft", K=k, N=n, bits=nbits, block_size=block,
            accuracy_level=self.accuracy_level)
        out = [mm]
        if offset:
            out = self._with_offsets(out, node, o_name, block, k // block)
        self.replaced[node.name] = out
        self.counts["MatMulNBits"] += 1

    def _tied_gather(self, tied: str, packed: np.ndarray, b_name: str, s_name: str, extra: list[str],
                     block: int, nbits: int) -> str:
        """One copy of a tied matrix: the Gather reads [V, H*bits/8] bytes; MatMulNBits a Reshape of them.
        Returns the name MatMulNBits reads."""
        from onnx import helper, numpy_helper

        n, nb = packed.shape[0], packed.shape[1]
        self.new_inits.extend([numpy_helper.from_array(packed.reshape(n, -1), b_name),
                               numpy_helper.from_array(np.asarray([n, nb, packed.shape[-1]], np.int64),
                                                       b_name + "_shape")])
        self.new_nodes.append(helper.make_node("Reshape", [b_name, b_name + "_shape"], [b_name + "_3d"],
                                               name=f"{tied}_reshape"))
        gn = self.weights.gathers[tied]
        self.replaced[gn.name] = [helper.make_node(
            "GatherBlockQuantized", [b_name, gn.input[1], s_name, *extra], list(gn.output),
            name=gn.name + "_quantized", domain="com.microsoft", gather_axis=0, quantize_axis=1,
            block_size=block, bits=nbits)]
        self.counts["GatherBlockQuantized"] += 1
        return b_name + "_3d"

    def _with_offsets(self, out: list, node, o_name: str, block: int, nb: int) -> list:
        """y = MatMulNBits(x) + (sums of x over each block) @ offsets; the sums shared by x's readers."""
        from onnx import helper, numpy_helper

        x_name, y_name = node.input[0], node.output[0]
        sums = f"{x_name}_block{block}_sums"
        if sums not in self.block_sums:
            self.block_sums.add(sums)
            shape = f"{x_name}_block{block}_shape"
            self.new_inits.append(numpy_helper.from_array(np.asarray([0, 0, nb, block], np.int64), shape))
            out[:0] = [helper.make_node("Reshape", [x_name, shape], [sums + "_in"], name=sums + "_reshape"),
                       helper.make_node("ReduceSum", [sums + "_in", self.AXIS_LAST], [sums], keepdims=0,
                                        name=sums + "_reduce")]
        return out + [helper.make_node("MatMul", [sums, o_name], [y_name + "_offsets"], name=node.name + "_offsets"),
                      helper.make_node("Add", [y_name + "_codes", y_name + "_offsets"], [y_name],
                                       name=node.name + "_add_offsets")]

    def gather(self, data: str, gn) -> None:
        """An embedding table not tied to a MatMul, as symmetric 8-bit blocks read by GatherBlockQuantized."""
        from onnx import helper, numpy_helper

        h = self.weights.dims[data][1]
        block = block_for(h, self.block_size)
        if data in self.tied_gathers or gn.name in self.exclude or block is None:
            return
        q, s, z = quantize_rows(self.weights.array(data), 8, block, symmetric=True)
        b_name, s_name = f"{data}_q8", f"{data}_scales"
        self.new_inits.append(numpy_helper.from_array(pack(q, 8).reshape(q.shape[0], -1), b_name))
        self.param(s_name, s)
        self.replaced[gn.name] = [helper.make_node(
            "GatherBlockQuantized", [b_name, gn.input[1], s_name], list(gn.output), name=gn.name + "_quantized",
            domain="com.microsoft", gather_axis=0, quantize_axis=1, block_size=block, bits=8)]
        self.counts["GatherBlockQuantized"] += 1


def _replace_nodes(g, rw: _Rewrite) -> None:
    """Put the rewrite into the graph `g`: new nodes first, replacements in place, then drop what nothing
    reads any more (a tied matrix's Transpose, a weight that only the replaced nodes used)."""
    nodes = rw.new_nodes + [m for nd in g.node for m in rw.replaced.get(nd.name, [nd])]
    while True:  # drop what nothing reads any more (a tied matrix's Transpose)
        read = {i for nd in nodes for i in nd.input} | {o.name for o in g.output}
        dead = [nd for nd in nodes if nd.op_type == "Transpose" and not any(o in read for o in nd.output)]
        if not dead:
            break
        nodes = [nd for nd in nodes if nd not in dead]
    del g.node[:]
    g.node.extend(nodes)
    still_used = {i for nd in g.node for i in nd.input}  # a weight also used elsewhere stays
    keep = [i for i in [*g.initializer, *rw.new_inits] if i.name in still_used]
    del g.initializer[:]
    g.initializer.extend(keep)
