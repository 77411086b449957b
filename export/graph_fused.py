"""The decoder graph of a Llama-style `TransformerLM`, written directly with onnxruntime's fused operators.

`torch.onnx.export` traces every shape computation of the PyTorch code: about 330 nodes a layer, most of
them Shape/Gather/Unsqueeze/Concat on dynamic sizes, and each node costs a few microseconds per run. On a
CPU decoding one token at a time that overhead is larger than the matrix work of a 135M model. This module
builds the same function from the model's weights with about ten nodes a layer:

    x = Gather(embedding, input_ids)
    per layer:  h, x = SkipSimplifiedLayerNormalization(x, previous output, ln1)    (RMSNorm of the sum)
                qkv  = MatMul(h, [Wq | Wk | Wv])
                a, present.key, present.value = GroupQueryAttention(qkv, past, rotary cos/sin)
                h, x = SkipSimplifiedLayerNormalization(MatMul(a, Wo), x, ln2)
                g, u = Split(MatMul(h, [Wgate | Wup]));  out = MatMul(g * Sigmoid(g) * u, Wdown)
    logits = MatMul(SkipSimplifiedLayerNormalization(out, x, ln_f), embedding^T)

The KV cache is the "shared" layout: the runtime binds each past and present to one buffer with spare
slots, and GroupQueryAttention writes the new keys/values into it at their positions (without the
binding, present is a copy of the buffer with them filled in). Positions come from `position_ids`:
seqlens_k is each row's last position, which is how the runtime numbers tokens after its cache.
GroupQueryAttention takes the packed q|k|v and applies the rotary embedding itself (non-interleaved,
rotate-half, as `model_lm.apply_rope`).

Only configurations that this layout covers are accepted (`supports`); others go through
`torch.onnx.export` as before. export_lm validates this graph against PyTorch like any other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.model_lm import TransformerLM, rope_tables

MS = "com.microsoft"


def supports(model: TransformerLM) -> bool:
    c = model.cfg
    return (c.norm == "rms" and c.pos == "rope" and c.mlp == "swiglu" and c.norm_first and not c.bias
            and c.n_embd == c.n_head * c.head_dim
            and c.head_dim % 8 == 0)  # GroupQueryAttention's kernels want a head size that is a multiple of 8


def build(model: TransformerLM, path: Path, opset: int = 17) -> None:
    """Write the graph of `model` (see the module notes) to `path`, with float32 weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if not supports(model):
        raise ValueError("the fused graph needs an RMSNorm/RoPE/SwiGLU pre-norm model without biases")
    c = model.cfg
    sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    H, Hkv, D, L = c.n_head, c.kv_heads, c.head_dim, c.n_layer
    nodes: list = []
    inits: list = []

    def init(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op: str, inputs: list[str], outputs: list[str], name: str, domain: str = "", **attrs) -> None:
        nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))

    def linear_t(key: str) -> np.ndarray:  # nn.Linear stores (out, in); MatMul wants (in, out)
        return sd[key].T

    # Lengths for GroupQueryAttention, from the positions (the runtime numbers tokens 0, 1, ... from the
    # start of the cache): seqlens_k = the last new position of each row, total = the largest plus one.
    # They do not depend on the cache's shape, so a cache buffer with spare slots works as well.
    init("i64_last", np.asarray([-1], np.int64))
    init("i64_end", np.asarray([np.iinfo(np.int64).max], np.int64))
    init("i64_axis1", np.asarray([1], np.int64))
    init("i64_one", np.asarray(1, np.int64))
    node("Slice", ["position_ids", "i64_last", "i64_end", "i64_axis1"], ["last_pos2d"], "last_pos2d")
    node("Squeeze", ["last_pos2d", "i64_axis1"], ["last_pos"], "last_pos")
    node("Cast", ["last_pos"], ["seqlens_k"], "seqlens_k", to=TensorProto.INT32)
    node("ReduceMax", ["last_pos"], ["max_pos"], "max_pos", keepdims=0)
    node("Add", ["max_pos", "i64_one"], ["total_len64"], "total_len64")
    node("Cast", ["total_len64"], ["total_len_scalar"], "total_len", to=TensorProto.INT32)
    cos, sin = rope_tables(c)
    init("rope_cos", cos.numpy().astype(np.float32))
    init("rope_sin", sin.numpy().astype(np.float32))

    wte = sd["wte.weight"]
    init("wte", wte)
    node("Gather", ["wte", "input_ids"], ["x0"], "embed", axis=0)
    split_ffn = init("ffn_split", np.asarray([c.ffn_hidden, c.ffn_hidden], np.int64))
    resid, out = "x0", None
    for i in range(L):
        p = f"blocks.{i}."
        ln1 = init(p + "ln1.weight", sd[p + "ln1.weight"])
        if out is None:
            node("SimplifiedLayerNormalization", [resid, ln1], [f"h{i}a"], f"/blocks.{i}/ln1",
                 axis=-1, epsilon=c.norm_eps, stash_type=1)
        else:
            node("SkipSimplifiedLayerNormalization", [out, resid, ln1], [f"h{i}a", "", "", f"x{i}a"],
                 f"/blocks.{i}/ln1", domain=MS, epsilon=c.norm_eps)
            resid = f"x{i}a"
        wqkv = np.concatenate([linear_t(p + "attn.q.weight"), linear_t(p + "attn.k.weight"),
                               linear_t(p + "attn.v.weight")], axis=1)
        node("MatMul", [f"h{i}a", init(p + "attn.qkv.weight", wqkv)], [f"qkv{i}"], f"/blocks.{i}/attn/qkv/MatMul")
        node("GroupQueryAttention",
             [f"qkv{i}", "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value", "seqlens_k",
              "total_len_scalar", "rope_cos", "rope_sin"],
             [f"att{i}", f"present.{i}.key", f"present.{i}.value"], f"/blocks.{i}/attn/gqa", domain=MS,
             num_heads=H, kv_num_heads=Hkv, do_rotary=1, rotary_interleaved=0)
        node("MatMul", [f"att{i}", init(p + "attn.o.weight", linear_t(p + "attn.o.weight"))], [f"ao{i}"],
             f"/blocks.{i}/attn/o/MatMul")
        ln2 = init(p + "ln2.weight", sd[p + "ln2.weight"])
        node("SkipSimplifiedLayerNormalization", [f"ao{i}", resid, ln2], [f"h{i}b", "", "", f"x{i}b"],
             f"/blocks.{i}/ln2", domain=MS, epsilon=c.norm_eps)
        resid = f"x{i}b"
        wgu = np.concatenate([linear_t(p + "mlp.gate.weight"), linear_t(p + "mlp.up.weight")], axis=1)
        node("MatMul", [f"h{i}b", init(p + "mlp.gate_up.weight", wgu)], [f"gu{i}"], f"/blocks.{i}/mlp/gate_up/MatMul")
        node("Split", [f"gu{i}", split_ffn], [f"g{i}", f"u{i}"], f"/blocks.{i}/mlp/split", axis=-1)
        node("Sigmoid", [f"g{i}"], [f"sg{i}"], f"/blocks.{i}/mlp/sigmoid")
        node("Mul", [f"g{i}", f"sg{i}"], [f"silu{i}"], f"/blocks.{i}/mlp/silu")
        node("Mul", [f"silu{i}", f"u{i}"], [f"act{i}"], f"/blocks.{i}/mlp/gated")
        out = f"mlp{i}"
        node("MatMul", [f"act{i}", init(p + "mlp.down.weight", linear_t(p + "mlp.down.weight"))], [out],
             f"/blocks.{i}/mlp/down/MatMul")
    node("SkipSimplifiedLayerNormalization", [out, resid, init("ln_f.weight", sd["ln_f.weight"])],
         ["hf"], "/ln_f", domain=MS, epsilon=c.norm_eps)
    head = wte.T if c.tie_embeddings else sd["lm_head.weight"].T
    node("MatMul", ["hf", init("lm_head.weight_t", head)], ["logits"], "/lm_head/MatMul")

    kv = ["batch", Hkv, "past_sequence", D]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
              helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "sequence"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", c.vocab_size])]
    for i in range(L):
        for w in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{w}", TensorProto.FLOAT, kv))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{w}", TensorProto.FLOAT,
                                                         ["batch", Hkv, "total_sequence", D]))
    graph = helper.make_graph(nodes, "decoder", inputs, outputs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)],
                          producer_name="aigc-studio export.graph_fused")
    onnx.save(m, str(path))
