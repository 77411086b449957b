"""The decoder graph of a `TransformerLM`, written directly with onnxruntime's fused operators.

`torch.onnx.export` traces every shape computation of the PyTorch code: about 330 nodes a layer, most of
them Shape/Gather/Unsqueeze/Concat on dynamic sizes, and each node costs a few microseconds per run. On a
CPU decoding one token at a time that overhead is larger than the matrix work of a 135M model, and it is
half of an int8 step of the seed's 29M model. This module builds the same function from the model's
weights with about ten nodes a layer. For the Llama-style layout (pre-LN RMSNorm, RoPE, SwiGLU):

    x = Gather(embedding, input_ids)
    per layer:  h, x = SkipSimplifiedLayerNormalization(x, previous output, ln1)    (RMSNorm of the sum)
                qkv  = MatMul(h, [Wq | Wk | Wv])
                a, present.key, present.value = GroupQueryAttention(qkv, past, rotary cos/sin)
                h, x = SkipSimplifiedLayerNormalization(MatMul(a, Wo), x, ln2)
                g, u = Split(MatMul(h, [Wgate | Wup]));  out = MatMul(g * Sigmoid(g) * u, Wdown)
    logits = MatMul(SkipSimplifiedLayerNormalization(out, x, ln_f)[last logits_keep positions], embedding^T)

Every other LMConfig option maps onto the same few operators: LayerNorm -> (Skip)LayerNormalization,
learned positions -> a second Gather added to the embedding (GroupQueryAttention without rotary),
ReLU/GELU feed-forward -> MatMul, Relu/Gelu, MatMul, biases -> Add after the MatMul (or the skip norm's
bias input). The seed's post-LN block, x = LN(x + f(x)), is SkipLayerNormalization's own formula.

The KV cache is the "shared" layout: the runtime binds each past and present to one buffer with spare
slots, and GroupQueryAttention writes the new keys/values into it at their positions (without the
binding, present is a copy of the buffer with them filled in). Positions come from `position_ids`:
seqlens_k is each row's last position, which is how the runtime numbers tokens after its cache.
GroupQueryAttention takes the packed q|k|v and applies the rotary embedding itself (non-interleaved,
rotate-half, as `export.models.lm.apply_rope`).

`supports` says which configurations the operators cover (head sizes that are multiples of 8); others
go through `torch.onnx.export`. export.onnx.lm validates this graph against PyTorch like any other.

`int8_kv_cache` rewrites such a graph (float or quantised weights) to keep its cache in int8: one scale
per layer, key/value, head and channel (GroupQueryAttention's PER_CHANNEL mode), fixed at export time by
`kv_cache_scales` from the model's keys and values on sample text. A decode step reads the whole cache,
so at long contexts its bytes compete with the weights': the seed configuration's float32 cache is
11.8 MB at 480 tokens against 24 MB of int8 weights. The operator quantises the new tokens' keys and
values as it writes them and attends over the dequantised cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.models.lm import TransformerLM, rope_tables

MS = "com.microsoft"


def supports(model: TransformerLM) -> bool:
    """Whether `build` can write this configuration (every norm, position, MLP and bias option of
    LMConfig, pre- or post-LN), as long as GroupQueryAttention takes its head layout."""
    c = model.cfg
    return (c.norm in NORMS and c.pos in ("learned", "rope") and c.mlp in ACTIVATIONS
            and c.n_embd == c.n_head * c.head_dim and c.n_head % c.kv_heads == 0
            and c.head_dim % 8 == 0)  # GroupQueryAttention's kernels want a head size that is a multiple of 8


NORMS = {  # cfg.norm -> (plain op and its domain, the op of "skip + input [+ bias]" then the norm)
    "layer": (("LayerNormalization", ""), "SkipLayerNormalization"),
    "rms": (("SimplifiedLayerNormalization", ""), "SkipSimplifiedLayerNormalization"),
}
ACTIVATIONS = {"relu": ("Relu", ""), "gelu": ("Gelu", MS), "swiglu": None}  # F.gelu is the erf form: MS Gelu


def build(model: TransformerLM, path: Path, opset: int = 17) -> None:
    """Write the graph of `model` (see the module notes) to `path`, with float32 weights."""
    import onnx

    if not supports(model):
        raise ValueError(f"the fused graph cannot express this configuration ({model.cfg})")
    onnx.save(DecoderGraph(model).model(opset), str(path))


class DecoderGraph:
    """Builds the decoder graph of one model: one method per block, called in graph order by `model`.

    Nodes and initializers are appended as the blocks are written, so the graph reads like the model.
    Names follow the model's parameters (`blocks.{i}.attn.qkv.weight`) and node names its modules
    (`/blocks.{i}/attn/gqa`)."""

    def __init__(self, model: TransformerLM) -> None:
        self.cfg = c = model.cfg
        self.sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        (self.norm_op, self.norm_domain), self.skip_op = NORMS[c.norm]
        self.nodes: list = []
        self.inits: list = []
        self.rotary: list[str] = []   # rope_cos, rope_sin for GroupQueryAttention (rotary positions only)
        self.ffn_split = ""           # the Split sizes of the concatenated gate|up output (SwiGLU only)

    def model(self, opset: int = 17):
        """The whole graph as an onnx ModelProto."""
        from onnx import helper

        self.lengths()
        x = self.embedding()
        resid, pending = x, None
        for i in range(self.cfg.n_layer):
            resid, pending = self.block(i, resid, pending)
        self.output(resid, pending)
        inputs, outputs = self.io()
        graph = helper.make_graph(self.nodes, "decoder", inputs, outputs, self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)],
                                 producer_name="aigc-studio export.onnx.fused")

    # -------------------------------------------------------------------------- primitives

    def init(self, name: str, arr: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str, domain: str = "", **attrs) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))

    def weight_t(self, key: str) -> np.ndarray:  # nn.Linear stores (out, in); MatMul wants (in, out)
        return self.sd[key].T

    def bias(self, *keys: str) -> str:
        """The (concatenated) bias of the linear layers `keys`, or "" without biases."""
        if not self.cfg.bias:
            return ""
        return self.init(keys[0].replace(".weight", ".bias"),
                         np.concatenate([self.sd[k.replace(".weight", ".bias")] for k in keys]))

    def linear(self, x: str, w_name: str, w: np.ndarray, b: str, out: str, name: str) -> None:
        if b:
            self.node("MatMul", [x, self.init(w_name, w)], [out + "_mm"], name + "/MatMul")
            self.node("Add", [out + "_mm", b], [out], name + "/Add")
        else:
            self.node("MatMul", [x, self.init(w_name, w)], [out], name + "/MatMul")

    def norm_inputs(self, key: str) -> list[str]:  # gamma [, beta]
        names = [self.init(key + ".weight", self.sd[key + ".weight"])]
        if self.cfg.norm == "layer":
            names.append(self.init(key + ".bias", self.sd[key + ".bias"]))
        return names

    def norm(self, x: str, key: str, out: str, name: str) -> str:
        """out = norm(x)."""
        extra = {"stash_type": 1} if self.cfg.norm == "rms" else {}
        self.node(self.norm_op, [x, *self.norm_inputs(key)], [out], name, domain=self.norm_domain, axis=-1,
                  epsilon=self.cfg.norm_eps, **extra)
        return out

    def skip_norm(self, x: str, skip: str, key: str, b: str, out: str, total: str, name: str) -> str:
        """out = norm(x + skip + b); total (when named) = x + skip + b, the pre-LN residual stream."""
        ins = [x, skip, *self.norm_inputs(key)]  # LayerNorm: gamma, beta; RMSNorm: gamma
        if b:
            ins.append(b)  # the bias input follows them in both operators
        self.node(self.skip_op, ins, [out, "", "", total] if total else [out], name, domain=MS,
                  epsilon=self.cfg.norm_eps)
        return out

    # -------------------------------------------------------------------------- blocks, in graph order

    def lengths(self) -> None:
        """seqlens_k and total_len_scalar for GroupQueryAttention, and the rotary tables.

        The lengths come from the positions (the runtime numbers tokens 0, 1, ... from the start of the
        cache): seqlens_k = the last new position of each row, total = the largest plus one. They do not
        depend on the cache's shape, so a cache buffer with spare slots works as well."""
        from onnx import TensorProto

        self.init("i64_last", np.asarray([-1], np.int64))
        self.init("i64_end", np.asarray([np.iinfo(np.int64).max], np.int64))
        self.init("i64_axis1", np.asarray([1], np.int64))
        self.init("i64_one", np.asarray(1, np.int64))
        self.node("Slice", ["position_ids", "i64_last", "i64_end", "i64_axis1"], ["last_pos2d"], "last_pos2d")
        self.node("Squeeze", ["last_pos2d", "i64_axis1"], ["last_pos"], "last_pos")
        self.node("Cast", ["last_pos"], ["seqlens_k"], "seqlens_k", to=TensorProto.INT32)
        self.node("ReduceMax", ["last_pos"], ["max_pos"], "max_pos", keepdims=0)
        self.node("Add", ["max_pos", "i64_one"], ["total_len64"], "total_len64")
        self.node("Cast", ["total_len64"], ["total_len_scalar"], "total_len", to=TensorProto.INT32)
        if self.cfg.pos == "rope":
            cos, sin = rope_tables(self.cfg)
            self.rotary = [self.init("rope_cos", cos.numpy().astype(np.float32)),
                           self.init("rope_sin", sin.numpy().astype(np.float32))]

    def embedding(self) -> str:
        """x0 = the token embedding (plus the learned position embedding)."""
        c = self.cfg
        self.init("wte", self.sd["wte.weight"])
        if c.pos == "learned":
            self.node("Gather", ["wte", "input_ids"], ["tok_emb"], "embed", axis=0)
            self.node("Gather", [self.init("wpe", self.sd["wpe.weight"]), "position_ids"], ["pos_emb"], "embed_pos",
                      axis=0)
            self.node("Add", ["tok_emb", "pos_emb"], ["x0"], "embed_sum")
        else:
            self.node("Gather", ["wte", "input_ids"], ["x0"], "embed", axis=0)
        if c.mlp == "swiglu":
            self.ffn_split = self.init("ffn_split", np.asarray([c.ffn_hidden, c.ffn_hidden], np.int64))
        return "x0"

    def block(self, i: int, resid: str, pending: tuple[str, str] | None) -> tuple[str, tuple[str, str] | None]:
        """Layer i on the residual stream `resid`; returns the stream and the sublayer output still to add.

        Pre-LN keeps the stream un-normalised and carries each sublayer's output (`pending`: its name and
        bias) into the next norm, which adds it: SkipNorm(pending, resid) -> (h, sum). Post-LN normalises
        the sum itself: resid = SkipNorm(sublayer(resid), resid), and nothing is pending."""
        c, p, n = self.cfg, f"blocks.{i}.", f"/blocks.{i}"
        if not c.norm_first:
            h = resid
        elif pending is None:
            h = self.norm(resid, p + "ln1", f"h{i}a", f"{n}/ln1")
        else:
            h = self.skip_norm(pending[0], resid, p + "ln1", pending[1], f"h{i}a", f"x{i}a", f"{n}/ln1")
            resid = f"x{i}a"
        attn, attn_b = self.attention(i, h)
        if c.norm_first:
            h = self.skip_norm(attn, resid, p + "ln2", attn_b, f"h{i}b", f"x{i}b", f"{n}/ln2")
            resid = f"x{i}b"
        else:
            h = resid = self.skip_norm(attn, resid, p + "ln1", attn_b, f"x{i}a", "", f"{n}/ln1")
        mlp, mlp_b = self.mlp(i, h)
        if c.norm_first:
            return resid, (mlp, mlp_b)
        return self.skip_norm(mlp, resid, p + "ln2", mlp_b, f"x{i}b", "", f"{n}/ln2"), None

    def attention(self, i: int, h: str) -> tuple[str, str]:
        """Packed q|k|v, GroupQueryAttention over the cache, output projection -> (output, its bias)."""
        c, p, n = self.cfg, f"blocks.{i}.", f"/blocks.{i}/attn"
        qkv_keys = [p + "attn.q.weight", p + "attn.k.weight", p + "attn.v.weight"]
        wqkv = np.concatenate([self.weight_t(k) for k in qkv_keys], axis=1)
        self.linear(h, p + "attn.qkv.weight", wqkv, self.bias(*qkv_keys), f"qkv{i}", f"{n}/qkv")
        self.node("GroupQueryAttention",
                  [f"qkv{i}", "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value", "seqlens_k",
                   "total_len_scalar", *self.rotary],
                  [f"att{i}", f"present.{i}.key", f"present.{i}.value"], f"{n}/gqa", domain=MS,
                  num_heads=c.n_head, kv_num_heads=c.kv_heads, do_rotary=int(bool(self.rotary)),
                  rotary_interleaved=0)
        self.node("MatMul", [f"att{i}", self.init(p + "attn.o.weight", self.weight_t(p + "attn.o.weight"))],
                  [f"ao{i}"], f"{n}/o/MatMul")
        return f"ao{i}", self.bias(p + "attn.o.weight")

    def mlp(self, i: int, h: str) -> tuple[str, str]:
        """The feed-forward sublayer (SwiGLU as one gate|up MatMul and a Split) -> (output, its bias)."""
        c, p, n = self.cfg, f"blocks.{i}.", f"/blocks.{i}/mlp"
        if c.mlp == "swiglu":
            gu_keys = [p + "mlp.gate.weight", p + "mlp.up.weight"]
            wgu = np.concatenate([self.weight_t(k) for k in gu_keys], axis=1)
            self.linear(h, p + "mlp.gate_up.weight", wgu, self.bias(*gu_keys), f"gu{i}", f"{n}/gate_up")
            self.node("Split", [f"gu{i}", self.ffn_split], [f"g{i}", f"u{i}"], f"{n}/split", axis=-1)
            self.node("Sigmoid", [f"g{i}"], [f"sg{i}"], f"{n}/sigmoid")
            self.node("Mul", [f"g{i}", f"sg{i}"], [f"silu{i}"], f"{n}/silu")
            self.node("Mul", [f"silu{i}", f"u{i}"], [f"act{i}"], f"{n}/gated")
        else:
            self.linear(h, p + "mlp.up.weight", self.weight_t(p + "mlp.up.weight"), self.bias(p + "mlp.up.weight"),
                        f"up{i}", f"{n}/up")
            act_op, act_domain = ACTIVATIONS[c.mlp]
            self.node(act_op, [f"up{i}"], [f"act{i}"], f"{n}/{act_op.lower()}", domain=act_domain)
        self.node("MatMul", [f"act{i}", self.init(p + "mlp.down.weight", self.weight_t(p + "mlp.down.weight"))],
                  [f"mlp{i}"], f"{n}/down/MatMul")
        return f"mlp{i}", self.bias(p + "mlp.down.weight")

    def output(self, resid: str, pending: tuple[str, str] | None) -> None:
        """The final norm and the logits of the last `logits_keep` positions only (0 = every position):
        a prompt's run needs the last one; computing all would cost the output layer T times."""
        c = self.cfg
        if pending is not None:
            self.skip_norm(pending[0], resid, "ln_f", pending[1], "hf", "", "/ln_f")
        else:
            self.norm(resid, "ln_f", "hf", "/ln_f")
        self.node("Neg", ["logits_keep"], ["logits_from"], "logits_from")
        self.node("Slice", ["hf", "logits_from", "i64_end", "i64_axis1"], ["hf_kept"], "logits_kept")
        head = self.sd["wte.weight"].T if c.tie_embeddings else self.sd["lm_head.weight"].T
        self.node("MatMul", ["hf_kept", self.init("lm_head.weight_t", head)], ["logits"], "/lm_head/MatMul")

    def io(self) -> tuple[list, list]:
        """The graph's inputs and outputs, in the order of export.onnx.lm_graph.io_names(..., logits_keep=True)."""
        from onnx import TensorProto, helper

        c = self.cfg
        kv = ["batch", c.kv_heads, "past_sequence", c.head_dim]
        inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
                  helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "sequence"])]
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "kept", c.vocab_size])]
        for i in range(c.n_layer):
            for w in ("key", "value"):
                inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{w}", TensorProto.FLOAT, kv))
                outputs.append(helper.make_tensor_value_info(f"present.{i}.{w}", TensorProto.FLOAT,
                                                             ["batch", c.kv_heads, "total_sequence", c.head_dim]))
        # Last, after the cache: a required input (onnxruntime's IOBinding cannot bind an input that has
        # a default initializer), listed in the manifest.
        inputs.append(helper.make_tensor_value_info("logits_keep", TensorProto.INT64, [1]))
        return inputs, outputs


KV_SCALE_MARGIN = 1.1
"""Calibrated ranges are widened by this factor, so that text unlike the calibration sample clips less."""


def kv_cache_scales(model: TransformerLM, batches: list[list[int]],
                    margin: float = KV_SCALE_MARGIN) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer, the int8 scales (key, value), each (Hkv, D), that cover the keys and values the model
    computes on the token-id sequences `batches` (with `margin`). With rotary positions a key's channels
    j and j + D/2 are rotated into each other by the position, so both get the scale of their pair's
    largest length sqrt(k_j^2 + k_(j+D/2)^2): no position can push a calibrated key past its range."""
    import torch

    c = model.cfg
    Hkv, D = c.kv_heads, c.head_dim
    amax: dict[tuple[int, str], torch.Tensor] = {}
    hooks = []

    def hook(layer: int, which: str):
        def fn(_module, _inputs, out):
            x = out.detach().float().reshape(-1, Hkv, D)
            if which == "k" and c.pos == "rope":
                half = D // 2
                r = torch.sqrt(x[..., :half] ** 2 + x[..., half:] ** 2)
                x = torch.cat([r, r], dim=-1)
            m = x.abs().amax(0)
            key = (layer, which)
            amax[key] = m if key not in amax else torch.maximum(amax[key], m)
        return fn

    for i, block in enumerate(model.blocks):
        hooks += [block.attn.k.register_forward_hook(hook(i, "k")), block.attn.v.register_forward_hook(hook(i, "v"))]
    try:
        with torch.no_grad():
            for ids in batches:
                model(torch.tensor([ids[: c.block_size]], dtype=torch.long))
    finally:
        for h in hooks:
            h.remove()
    if not amax:
        raise ValueError("no calibration tokens")

    def scale(m: torch.Tensor) -> np.ndarray:
        return (np.maximum(m.numpy(), 1e-6) * margin / 127.0).astype(np.float32)

    return [(scale(amax[(i, "k")]), scale(amax[(i, "v")])) for i in range(c.n_layer)]


def int8_kv_cache(src: Path, dst: Path, scales: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Rewrite the fused graph at `src` so that every past/present is int8 with per-channel `scales`
    (from `kv_cache_scales`, one (key, value) pair of (Hkv, D) arrays per layer); write `dst`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    gqa = [n for n in g.node if n.op_type == "GroupQueryAttention"]
    if len(gqa) != len(scales):
        raise ValueError(f"{src}: {len(gqa)} GroupQueryAttention nodes, {len(scales)} layers of scales")
    for n in gqa:
        layer = int(n.input[3].split(".")[1])  # past_key_values.{i}.key
        k_s, v_s = scales[layer]
        names = []
        for which, arr in (("key", k_s), ("value", v_s)):
            name = f"kv_scale.{layer}.{which}"
            g.initializer.append(numpy_helper.from_array(arr.reshape(1, *arr.shape).astype(np.float32)[:, :, None],
                                                         name))
            names.append(name)
        ins = list(n.input) + [""] * max(0, 14 - len(n.input))
        ins[12], ins[13] = names
        del n.input[:]
        n.input.extend(ins)
        n.attribute.extend([helper.make_attribute("k_quant_type", "PER_CHANNEL"),
                            helper.make_attribute("v_quant_type", "PER_CHANNEL"),
                            helper.make_attribute("kv_cache_bit_width", 8)])
    for v in [*g.input, *g.output]:
        if v.name.startswith(("past_key_values.", "present.")):
            v.type.tensor_type.elem_type = TensorProto.INT8
    onnx.save(m, str(dst))
