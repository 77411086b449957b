"""export/quant/blocks.py: block quantisation in numpy, checked against onnxruntime's own kernels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from export.quant.blocks import block_for, dequantize_rows, pack, quantize_graph, quantize_rows  # noqa: E402


def _q4_1_like(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Rows made of GGUF Q4_1 blocks of 32: w = d*q + m with float16 d and m and codes 0..15."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.002, 0.02, (n, k // 32, 1)).astype(np.float16).astype(np.float32)
    m = rng.uniform(-0.15, -0.01, (n, k // 32, 1)).astype(np.float16).astype(np.float32)
    q = rng.integers(0, 16, (n, k // 32, 32))
    q[..., 0], q[..., 1] = 0, 15  # each block spans its whole range, as Q4_1 blocks do
    return (d * q + m).reshape(n, k)


def _session(model: onnx.ModelProto, path: Path) -> ort.InferenceSession:
    onnx.save(model, str(path))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _matmul_graph(w: np.ndarray) -> onnx.ModelProto:
    k, n = w.shape
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "t", k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "t", n])],
                          [numpy_helper.from_array(w, "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_a_q4_1_block_maps_exactly() -> None:
    w = _q4_1_like(6, 96)
    q, s, z = quantize_rows(w, 4, 32)
    assert q.dtype == np.uint8 and q.max() <= 15 and z.dtype == np.float32
    assert np.abs(dequantize_rows(q, s, z) - w).max() < 1e-6


def test_integer_zero_points_keep_zero_exact_and_cut_error_by_search() -> None:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((64, 128)).astype(np.float32)
    w[:, 5] = 0.0
    q, s, z = quantize_rows(w, 4, 32, float_zero=False)
    assert z.dtype == np.uint8 and z.max() <= 15
    deq = dequantize_rows(q, s, z)
    assert np.all(deq[:, 5] == 0.0)
    plain = dequantize_rows(*quantize_rows(w, 4, 32, float_zero=False, grid=(1.0,), refit=0))
    assert ((deq - w) ** 2).mean() < 0.95 * ((plain - w) ** 2).mean()  # the range search pays for itself


def test_pack_is_low_nibble_first() -> None:
    assert pack(np.array([[1, 2, 15, 0]], np.uint8), 4).tolist() == [[0x21, 0x0F]]
    assert pack(np.array([[7, 200]], np.uint8), 8).tolist() == [[7, 200]]


@pytest.mark.parametrize("bits", [4, 8])
def test_matmulnbits_graph_matches_numpy(tmp_path: Path, bits: int) -> None:
    """The rewritten graph (codes, scales, per-block offsets) computes x @ dequantised(w) in onnxruntime."""
    k, n = 96, 40
    w = (_q4_1_like(n, k).T.astype(np.float32) if bits == 4
         else np.random.default_rng(2).standard_normal((k, n)).astype(np.float32))
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(_matmul_graph(w), str(src))
    counts = quantize_graph(src, dst, bits=bits, accuracy_level=0, half_params=False)
    assert counts == {"MatMulNBits": 1, "GatherBlockQuantized": 0}
    q = onnx.load(str(dst))
    assert {nd.op_type for nd in q.graph.node} >= {"MatMulNBits", "ReduceSum"}
    assert not any(i.name == "w" for i in q.graph.initializer)
    x = np.random.default_rng(3).standard_normal((2, 3, k)).astype(np.float32)
    got = _session(q, tmp_path / "run.onnx").run(None, {"x": x})[0]
    want = x @ dequantize_rows(*quantize_rows(w.T, bits, 32)).T
    assert np.abs(got - want).max() < 1e-3 * np.abs(want).max()
    if bits == 4:  # and on Q4_1 weights that is x @ w itself
        assert np.abs(got - x @ w).max() < 1e-3 * np.abs(x @ w).max()


def test_tied_embedding_is_stored_once_and_shared(tmp_path: Path) -> None:
    """Gather(W) and MatMul(h, W^T) become GatherBlockQuantized and MatMulNBits on the same bytes."""
    V, H = 200, 64
    rng = np.random.default_rng(4)
    wte = (rng.standard_normal((V, H)) * 0.1).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Gather", ["wte", "ids"], ["h"], name="emb"),
         helper.make_node("MatMul", ["h", "wte_t"], ["logits"], name="lm_head")], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "t"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "t", V])],
        [numpy_helper.from_array(wte, "wte"), numpy_helper.from_array(wte.T.copy(), "wte_t")])
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    assert quantize_graph(src, dst, tied_bits=8, tied_block_size=64) == {"MatMulNBits": 1,
                                                                          "GatherBlockQuantized": 1}
    q = onnx.load(str(dst))
    big = [i for i in q.graph.initializer if np.prod(i.dims) >= V * H // 2]
    assert len(big) == 1 and big[0].data_type == TensorProto.UINT8  # one copy, 8 bits a weight
    ids = np.array([[0, 5, 199]], np.int64)
    got = _session(q, tmp_path / "run.onnx").run(None, {"ids": ids})[0]
    want = wte[ids] @ wte.T
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 0.02 * np.abs(want).max()
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_weights_that_do_not_fit_the_blocks_stay_float(tmp_path: Path) -> None:
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(_matmul_graph(np.ones((40, 8), np.float32)), str(src))
    assert quantize_graph(src, dst)["MatMulNBits"] == 0
    assert [nd.op_type for nd in onnx.load(str(dst)).graph.node] == ["MatMul"]


def test_block_for_takes_the_largest_power_of_two_that_divides() -> None:
    assert [block_for(k, 128) for k in (2048, 768, 576, 192, 48, 40)] == [128, 128, 64, 64, 16, None]
    assert block_for(576, 32) == 32 and block_for(1536, 64) == 64


def test_q8_integer_zero_points_need_no_offset_nodes(tmp_path: Path) -> None:
    """q8's form: uint8 zero points inside MatMulNBits (blocks of 128, 64 where K asks), no offset MatMul."""
    k, n = 192, 40
    w = np.random.default_rng(5).standard_normal((k, n)).astype(np.float32)
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(_matmul_graph(w), str(src))
    assert quantize_graph(src, dst, bits=8, block_size=128, zero_points="uint8", accuracy_level=0,
                          half_params=False)["MatMulNBits"] == 1
    q = onnx.load(str(dst))
    assert [nd.op_type for nd in q.graph.node] == ["MatMulNBits"]
    assert {a.name: a.i for a in q.graph.node[0].attribute}["block_size"] == 64
    x = np.random.default_rng(6).standard_normal((1, 2, k)).astype(np.float32)
    got = _session(q, tmp_path / "run.onnx").run(None, {"x": x})[0]
    want = x @ dequantize_rows(*quantize_rows(w.T, 8, 64, float_zero=False)).T
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()
    assert np.abs(got - x @ w).max() < 0.01 * np.abs(x @ w).max()


def test_tied_matrix_given_as_a_transpose_is_found(tmp_path: Path) -> None:
    """After export.onnx.lm_graph.dedupe_tied_weights the output layer reads Transpose(W): still one 8-bit copy,
    and neither the Transpose nor a float W is left."""
    V, H = 200, 64
    wte = (np.random.default_rng(7).standard_normal((V, H)) * 0.1).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Transpose", ["wte"], ["wte_t"], perm=[1, 0], name="tied_transpose"),
         helper.make_node("Gather", ["wte", "ids"], ["h"], name="emb"),
         helper.make_node("MatMul", ["h", "wte_t"], ["logits"], name="lm_head")], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "t"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "t", V])],
        [numpy_helper.from_array(wte, "wte")])
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    assert quantize_graph(src, dst, bits=8, tied_bits=8, tied_block_size=128, zero_points="uint8",
                          gather_bits=8) == {"MatMulNBits": 1, "GatherBlockQuantized": 1}
    q = onnx.load(str(dst))
    assert "Transpose" not in {nd.op_type for nd in q.graph.node}
    assert not any(i.data_type == TensorProto.FLOAT and np.prod(i.dims) >= V for i in q.graph.initializer)
    ids = np.array([[0, 5, 199]], np.int64)
    got = _session(q, tmp_path / "run.onnx").run(None, {"ids": ids})[0]
    want = wte[ids] @ wte.T
    assert np.abs(got - want).max() < 0.02 * np.abs(want).max()


def test_untied_embedding_tables_become_8_bit_with_gather_bits(tmp_path: Path) -> None:
    """gather_bits=8: token and position tables (not tied to any MatMul) read through GatherBlockQuantized."""
    V, P, H = 300, 50, 64
    rng = np.random.default_rng(8)
    wte = rng.standard_normal((V, H)).astype(np.float32)
    wpe = (rng.standard_normal((P, H)) * 0.1).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Gather", ["wte", "ids"], ["a"], name="emb"),
         helper.make_node("Gather", ["wpe", "pos"], ["b"], name="emb_pos"),
         helper.make_node("Add", ["a", "b"], ["h"], name="add")], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "t"]),
         helper.make_tensor_value_info("pos", TensorProto.INT64, ["b", "t"])],
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, ["b", "t", H])],
        [numpy_helper.from_array(wte, "wte"), numpy_helper.from_array(wpe, "wpe")])
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    assert quantize_graph(src, dst, bits=8)["GatherBlockQuantized"] == 0  # off unless asked
    assert quantize_graph(src, dst, bits=8, gather_bits=8)["GatherBlockQuantized"] == 2
    q = onnx.load(str(dst))
    assert not any(i.data_type == TensorProto.FLOAT and np.prod(i.dims) >= P * H for i in q.graph.initializer)
    ids, pos = np.array([[0, 7, 299]], np.int64), np.array([[0, 1, 49]], np.int64)
    got = _session(q, tmp_path / "run.onnx").run(None, {"ids": ids, "pos": pos})[0]
    want = wte[ids] + wpe[pos]
    assert np.abs(got - want).max() < 0.01 * np.abs(wte).max()
