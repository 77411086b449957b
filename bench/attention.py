"""What one decode step's attention costs as the context grows, and what the alternatives would save.

    python bench/attention.py                       # seed and writer shapes, 1 and 2 threads (~1 min)
    python bench/attention.py --shapes writer --contexts 32,512,1024,2000 --threads 2

A graph of only the attention of every layer (the q|k|v projection's output fed straight into the next
layer, no weights) is run on onnxruntime's CPU provider for one new token after a past of P tokens,
batch 1, the KV cache bound in place through IOBinding and sized as `TextGenerator` sizes it (the
past rounded up to a whole number of 64-slot buckets):

  gqa fp32      (baseline) GroupQueryAttention over a float32 cache: what export/onnx/fused.py writes
  gqa int8      the same operator over an int8 cache with per-channel scales (`k_quant_type` /
                `v_quant_type` PER_CHANNEL, 8 bits): a quarter of the bytes to read
  matmul gemv   plain MatMul/Softmax/MatMul with K kept transposed (B, Hkv, D, capacity), so that both
                products are matrix-vector products onnxruntime runs without packing K (no in-place
                cache write here: the graph only reads; the runtime would have to write the new slots;
                the free slots of the last bucket are masked)

Shapes: "seed" = LMConfig.seed() (6 layers, 8 heads of 64, no grouping), "writer" = SmolLM2-135M
(30 layers, 9 query heads and 3 key/value heads of 64). Each cell is warmed up, then timed 100 times
(the variants take turns, to share the machine's drift; their threads sleep between runs, since three
spinning pools would compete for the cores); medians. The last column gives the cost at
each context against the cost at the smallest one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

SHAPES = {"seed": dict(layers=6, heads=8, kv_heads=8, head_dim=64),
          "writer": dict(layers=30, heads=9, kv_heads=3, head_dim=64)}
VARIANTS = ("gqa fp32", "gqa int8", "matmul gemv")


def build(variant: str, layers: int, heads: int, kv_heads: int, head_dim: int, capacity: int) -> bytes:
    """The attention of `layers` layers as one ONNX graph (layer i's output is the next one's query)."""
    from onnx import TensorProto as TP
    from onnx import helper

    H, Hkv, D = heads, kv_heads, head_dim
    nodes, inits, inputs, outputs = [], [], [], []
    f32 = TP.FLOAT
    if variant.startswith("gqa"):
        cache_t = TP.INT8 if variant == "gqa int8" else f32
        inputs += [helper.make_tensor_value_info("qkv", f32, [1, 1, (H + 2 * Hkv) * D]),
                   helper.make_tensor_value_info("seqlens_k", TP.INT32, [1]),
                   helper.make_tensor_value_info("total", TP.INT32, [])]
        # the next layer's packed q|k|v: this layer's output (H*D) repeated, cut to (H + 2*Hkv)*D values
        repeats = -(-(H + 2 * Hkv) // H)
        inits += [helper.make_tensor("lo", TP.INT64, [1], [0]),
                  helper.make_tensor("hi", TP.INT64, [1], [(H + 2 * Hkv) * D]),
                  helper.make_tensor("ax", TP.INT64, [1], [2])]
        if cache_t == TP.INT8:
            inits += [helper.make_tensor(n, f32, [1, Hkv, 1, D], np.full(Hkv * D, 0.05, np.float32).tolist())
                      for n in ("k_scale", "v_scale")]
        x = "qkv"
        for i in range(layers):
            for kv in ("key", "value"):
                inputs.append(helper.make_tensor_value_info(f"past.{i}.{kv}", cache_t, [1, Hkv, capacity, D]))
                outputs.append(helper.make_tensor_value_info(f"present.{i}.{kv}", cache_t, [1, Hkv, capacity, D]))
            ins = [x, "", "", f"past.{i}.key", f"past.{i}.value", "seqlens_k", "total"]
            attrs: dict = dict(num_heads=H, kv_num_heads=Hkv)
            if cache_t == TP.INT8:
                ins += ["", "", "", "", "", "k_scale", "v_scale"]
                attrs.update(k_quant_type="PER_CHANNEL", v_quant_type="PER_CHANNEL", kv_cache_bit_width=8)
            nodes.append(helper.make_node("GroupQueryAttention", ins, [f"a{i}", f"present.{i}.key",
                                                                       f"present.{i}.value"],
                                          domain="com.microsoft", **attrs))
            nodes.append(helper.make_node("Concat", [f"a{i}"] * repeats, [f"r{i}"], axis=2))
            x = f"qkv{i + 1}"
            nodes.append(helper.make_node("Slice", [f"r{i}", "lo", "hi", "ax"], [x]))
        outputs.insert(0, helper.make_tensor_value_info(x, f32, None))
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    else:
        G = H // Hkv
        inputs += [helper.make_tensor_value_info("q", f32, [Hkv, G, 1, D]),
                   helper.make_tensor_value_info("mask", f32, [1, 1, 1, capacity])]
        x = "q"
        for i in range(layers):
            inputs += [helper.make_tensor_value_info(f"kt.{i}", f32, [Hkv, 1, D, capacity]),
                       helper.make_tensor_value_info(f"v.{i}", f32, [Hkv, 1, capacity, D])]
            nodes += [helper.make_node("MatMul", [x, f"kt.{i}"], [f"sc{i}"]),        # (Hkv, G, 1, cap)
                      helper.make_node("Add", [f"sc{i}", "mask"], [f"sm{i}"]),
                      helper.make_node("Softmax", [f"sm{i}"], [f"p{i}"], axis=-1),
                      helper.make_node("MatMul", [f"p{i}", f"v.{i}"], [f"o{i}"])]     # (Hkv, G, 1, D)
            x = f"o{i}"
        outputs.append(helper.make_tensor_value_info(x, f32, None))
        opsets = [helper.make_opsetid("", 17)]
    graph = helper.make_graph(nodes, "attention", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    return model.SerializeToString()


class Cell:
    """One variant's session and bound buffers, at a fixed capacity; `run(past)` times one step."""

    def __init__(self, variant: str, shape: dict, capacity: int, threads: int) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        # Three sessions take turns: spinning pools would keep burning the cores while another runs.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.variant, self.shape, self.capacity = variant, shape, capacity
        self.session = ort.InferenceSession(build(variant, capacity=capacity, **shape), so,
                                            providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        L, H, Hkv, D = shape["layers"], shape["heads"], shape["kv_heads"], shape["head_dim"]
        self.binding = self.session.io_binding()
        self.keep = []
        if variant.startswith("gqa"):
            for i in range(L):
                for kv in ("key", "value"):
                    a = rng.standard_normal((1, Hkv, capacity, D)).astype(np.float32)
                    if variant == "gqa int8":
                        a = np.clip(a * 20, -127, 127).astype(np.int8)
                    value = ort.OrtValue.ortvalue_from_numpy(a)
                    self.keep += [a, value]
                    self.binding.bind_ortvalue_input(f"past.{i}.{kv}", value)
                    self.binding.bind_ortvalue_output(f"present.{i}.{kv}", value)
            self.binding.bind_cpu_input("qkv", rng.standard_normal((1, 1, (H + 2 * Hkv) * D)).astype(np.float32))
        else:
            for i in range(L):
                for name, shp in ((f"kt.{i}", (Hkv, 1, D, capacity)), (f"v.{i}", (Hkv, 1, capacity, D))):
                    a = rng.standard_normal(shp).astype(np.float32)
                    self.keep.append(a)
                    self.binding.bind_cpu_input(name, a)
            self.binding.bind_cpu_input("q", rng.standard_normal((Hkv, H // Hkv, 1, D)).astype(np.float32) / 8)
        self.binding.bind_output(self.session.get_outputs()[0].name, "cpu")

    def set_past(self, past: int) -> None:
        if self.variant.startswith("gqa"):
            self.binding.bind_cpu_input("seqlens_k", np.asarray([past], np.int32))
            self.binding.bind_cpu_input("total", np.asarray(past + 1, np.int32))
        else:
            mask = np.zeros((1, 1, 1, self.capacity), np.float32)
            mask[..., past + 1:] = -1e30
            self.keep.append(mask)
            self.binding.bind_cpu_input("mask", mask)

    def run(self) -> float:
        t = time.perf_counter()
        self.session.run_with_iobinding(self.binding)
        return (time.perf_counter() - t) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="seed,writer", help="comma-separated: " + ", ".join(SHAPES))
    ap.add_argument("--contexts", default="", help="past lengths (default: seed 32,256,480; writer 32,512,1024,2000)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=100)
    args = ap.parse_args(argv)
    import onnxruntime as ort

    print(f"attention of one decode step, onnxruntime {ort.__version__}, CPU, batch 1; medians of {args.reps}")
    rows = []
    for name in [s for s in args.shapes.split(",") if s]:
        shape = SHAPES[name]
        contexts = ([int(c) for c in args.contexts.split(",")] if args.contexts
                    else [32, 256, 480] if name == "seed" else [32, 512, 1024, 2000])
        for threads in [int(t) for t in args.threads.split(",")]:
            for past in contexts:
                capacity = -(-(past + 1) // 64) * 64  # the runtime's cache grows in buckets of 64 slots
                cells = {v: Cell(v, shape, capacity, threads) for v in VARIANTS}
                times: dict[str, list[float]] = {v: [] for v in VARIANTS}
                for cell in cells.values():
                    cell.set_past(past)
                    for _ in range(10):
                        cell.run()
                for _ in range(args.reps):  # the variants take turns
                    for v, cell in cells.items():
                        times[v].append(cell.run())
                for v in VARIANTS:
                    rows.append((name, threads, v, past, float(np.median(times[v]))))
    print(f"\n{'shape':8} {'thr':>3}  {'variant':12} {'past':>6} {'ms/step':>8} "
          f"{'vs gqa fp32':>11} {'vs smallest past':>16}")
    base = {(r[0], r[1], r[3]): r[4] for r in rows if r[2] == "gqa fp32"}
    first = {}
    for name, thr, v, past, ms in rows:
        first.setdefault((name, thr, v), ms)
        print(f"{name:8} {thr:>3}  {v:12} {past:>6} {ms:8.3f} {ms / base[(name, thr, past)]:10.2f}x "
              f"{ms / first[(name, thr, v)]:15.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
