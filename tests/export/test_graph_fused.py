"""export/onnx/fused.py: the fused-operator decoder graph of a Llama-style model, and the runtime's
"shared" KV cache layout that goes with it (past and present bound to one buffer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from aigc_studio.core.sampling import SamplingConfig  # noqa: E402
from aigc_studio.runtime.package import load_package  # noqa: E402
from aigc_studio.runtime.text_generator import TextGenerator  # noqa: E402
from export.models.lm import LMConfig, TransformerLM, greedy  # noqa: E402
from export.onnx import fused as graph_fused  # noqa: E402
from export.onnx.lm import export_package  # noqa: E402
from tests.tiny_bpe import train_tiny_bpe  # noqa: E402

LLAMA = dict(norm="rms", pos="rope", mlp="swiglu", norm_first=True, bias=False, tie_embeddings=True)


def _model(vocab: int, **cfg) -> TransformerLM:
    torch.manual_seed(0)
    base = dict(block_size=64, n_layer=2, n_head=4, n_kv_head=2, n_embd=64, ffn_hidden=96, **LLAMA)
    m = TransformerLM(LMConfig(vocab_size=vocab, **{**base, **cfg})).eval()
    with torch.no_grad():  # weights far from the initialisation, so the positions and heads matter
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


def test_supports_every_layout_but_odd_head_sizes() -> None:
    assert graph_fused.supports(_model(50))
    assert graph_fused.supports(TransformerLM(LMConfig.seed()))  # post-LN, learned positions, ReLU, biases
    assert not graph_fused.supports(_model(50, n_embd=48, n_head=4))  # head size 12: not a multiple of 8
    with pytest.raises(ValueError, match="cannot express"):
        graph_fused.build(_model(50, n_embd=48, n_head=4), Path("unused.onnx"))


def test_graph_is_small_and_matches_pytorch(tmp_path: Path) -> None:
    import onnxruntime as ort

    model = _model(120)
    path = tmp_path / "m.onnx"
    graph_fused.build(model, path)
    g = onnx.load(str(path)).graph
    assert sum(n.op_type == "GroupQueryAttention" for n in g.node) == 2
    assert len(g.node) < 15 * 2 + 20  # about ten nodes a layer, against ~330 from torch.onnx.export
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = np.arange(3, 40, dtype=np.int64)[None]
    feed = {"input_ids": ids, "position_ids": np.arange(ids.shape[1])[None], "logits_keep": np.zeros(1, np.int64)}
    feed.update({f"past_key_values.{i}.{w}": np.zeros((1, 2, 0, 16), np.float32)
                 for i in range(2) for w in ("key", "value")})
    logits, k0 = s.run(["logits", "present.0.key"], feed)
    with torch.no_grad():
        want = model(torch.from_numpy(ids))[0].numpy()
    assert np.abs(logits - want).max() < 1e-4
    assert k0.shape == (1, 2, ids.shape[1], 16)


SEED_LIKE = dict(norm="layer", pos="learned", mlp="relu", norm_first=False, bias=True, tie_embeddings=False,
                 n_kv_head=0)


@pytest.mark.parametrize("cfg", [
    SEED_LIKE,                                                           # the seed's own layout
    {**SEED_LIKE, "norm_first": True, "mlp": "gelu", "tie_embeddings": True},
    {**SEED_LIKE, "norm": "rms", "bias": False},                         # post-LN RMSNorm
    {**LLAMA, "norm": "layer", "bias": True, "norm_first": False},       # rotary + post-LN LayerNorm + biases
], ids=["seed", "pre-ln-gelu-tied", "post-rms", "rope-post-ln-bias"])
def test_other_layouts_match_pytorch_with_a_past(tmp_path: Path, cfg: dict) -> None:
    """Every LMConfig layout: a prompt, then tokens after it through the shared cache, against PyTorch."""
    import onnxruntime as ort

    model = _model(90, **cfg)
    c = model.cfg
    path = tmp_path / "m.onnx"
    graph_fused.build(model, path)
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = np.asarray([[5, 17, 3, 44, 61, 2, 9, 30, 88, 12]], dtype=np.int64)
    with torch.no_grad():
        want = model(torch.from_numpy(ids))[0].numpy()
    cache = {f"past_key_values.{i}.{w}": np.zeros((1, c.kv_heads, 16, c.head_dim), np.float32)
             for i in range(c.n_layer) for w in ("key", "value")}
    got = []
    for start, stop in ((0, 6), (6, 7), (7, 10)):  # prompt, one step, a continuation of three tokens
        feed = {"input_ids": ids[:, start:stop], "position_ids": np.arange(start, stop)[None], **cache,
                "logits_keep": np.zeros(1, np.int64)}
        out = s.run(None, feed)
        got.append(out[0])
        cache = dict(zip(cache, out[1:]))  # unbound present = the buffer with the new slots filled in
    assert np.abs(np.concatenate(got, axis=1) - want).max() < 1e-4


@pytest.fixture(scope="module")
def fused_package(tmp_path_factory) -> tuple[Path, TransformerLM]:
    from aigc_studio.runtime.tokenizer import HFTokenizer
    from export.train.lm import model_from_checkpoint
    from tests.export.test_export_lm_cli import _checkpoint

    tmp = tmp_path_factory.mktemp("fused")
    tok = train_tiny_bpe(tmp / "tok")
    bpe = HFTokenizer(tok)
    # trained briefly: an untrained model picks tokens the generator rules out, so greedy parity fails
    model = model_from_checkpoint(_checkpoint(tmp / "ckpt.pt", bpe.vocab_size, bpe.encode, None,
                                              norm="rms", pos="rope", mlp="swiglu", n_kv_head=1)).eval()
    assert graph_fused.supports(model)
    out = tmp / "pkg"
    export_package(model, tok, out, name="fused", variants=("fp32",), tokenizer_type="bpe",
                   tokens={"eos": 0}, int8_min_agree=0.0, fp32_tol=1e-3, verbose=False, quant="q4",
                   val_text="It is a truth universally acknowledged that she walked to the window. " * 8)
    return out, model


def test_export_writes_the_shared_cache_layout(fused_package) -> None:
    out, _ = fused_package
    m = load_package(out).manifest
    assert m["graphs"]["kv_cache"] == "shared"
    assert m["validation"]["fp32"]["greedy_all_equal"] and m["validation"]["fp32"]["max_abs_logit_diff"] < 1e-3


def test_shared_cache_decodes_like_pytorch_across_calls(fused_package) -> None:
    """Greedy tokens equal PyTorch's, the buffer is written in place (no present copy), and a second
    call that extends the prompt reuses the cached prefix with the same result as a fresh generator."""
    out, model = fused_package
    gen = TextGenerator(load_package(out), device="cpu", threads=1)
    ids = gen.tokenizer.encode("It is a truth universally acknowledged")
    cfg = SamplingConfig(strategy="greedy", max_new_tokens=12)
    got = [t for t, _ in gen.generate_tokens(ids, cfg)]
    assert got == greedy(model, ids, 12)
    logits, kv = gen.forward(np.asarray([ids]), 0, gen.empty_cache())
    before = [a for a in kv.arrays]
    step, kv2 = gen.forward(np.asarray([[got[0]]]), len(ids), kv)
    assert all(a is b for a, b in zip(kv2.arrays, before))  # the same buffers, written in place
    assert np.abs(kv2.arrays[0][:, :, len(ids)]).sum() > 0
    fresh = TextGenerator(load_package(out), device="cpu", threads=1)
    want, _ = fresh.forward(np.asarray([ids + got[:1]]), 0, fresh.empty_cache())
    assert np.abs(step[0, -1] - want[0, -1]).max() < 1e-4


def test_beam_search_runs_on_the_shared_cache(fused_package) -> None:
    out, _ = fused_package
    gen = TextGenerator(load_package(out), device="cpu", threads=1)
    res = gen.complete("She walked to the", SamplingConfig(strategy="beam", num_beams=3, num_return=3,
                                                            max_new_tokens=6))
    assert len(res) == 3 and len({r.token_ids for r in res}) == 3


# ----------------------------------------------------------------------------- int8 KV cache


def test_kv_scales_cover_the_keys_at_every_position() -> None:
    """A rotary key's channel pair (j, j + D/2) shares one scale, the pair's largest length: whatever
    the position rotates it to, the calibrated keys stay inside +-127 steps."""
    model = _model(120)
    ids = list(range(3, 60))
    scales = graph_fused.kv_cache_scales(model, [ids], margin=1.0)
    assert len(scales) == 2 and scales[0][0].shape == (2, 16) and scales[0][1].shape == (2, 16)
    k_s, v_s = scales[0]
    assert np.array_equal(k_s[:, :8], k_s[:, 8:])
    captured = {}
    hook = model.blocks[0].attn.k.register_forward_hook(lambda m, i, o: captured.setdefault("k", o.detach()))
    with torch.no_grad():
        model(torch.tensor([ids]))
    hook.remove()
    k = captured["k"][0].reshape(len(ids), 2, 16).numpy()
    for angle in np.linspace(0, np.pi, 7):  # any rotation of each pair
        c, s = np.cos(angle), np.sin(angle)
        rot = np.concatenate([k[..., :8] * c - k[..., 8:] * s, k[..., 8:] * c + k[..., :8] * s], -1)
        assert (np.abs(rot) / k_s <= 127 + 1e-3).all()
    assert np.abs(rot / k_s).max() > 100  # and the range is used, not wasted


def test_int8_kv_cache_graph_stays_close_to_float(tmp_path: Path) -> None:
    import onnxruntime as ort

    model = _model(120)
    path, q = tmp_path / "m.onnx", tmp_path / "m.kv8.onnx"
    graph_fused.build(model, path)
    ids = np.arange(3, 40, dtype=np.int64)[None]
    graph_fused.int8_kv_cache(path, q, graph_fused.kv_cache_scales(model, [ids[0].tolist()]))
    outs = {}
    for name, p, dt in (("float", path, np.float32), ("int8", q, np.int8)):
        s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        assert {i.type for i in s.get_inputs() if i.name.startswith("past")} == {
            "tensor(float)" if dt is np.float32 else "tensor(int8)"}
        feed = {"input_ids": ids, "position_ids": np.arange(ids.shape[1])[None], "logits_keep": np.zeros(1, np.int64)}
        feed.update({f"past_key_values.{i}.{w}": np.zeros((1, 2, 0, 16), dt)
                     for i in range(2) for w in ("key", "value")})
        outs[name] = s.run(["logits", "present.0.key"], feed)
    (lf, _), (l8, k8) = outs["float"], outs["int8"]
    assert k8.dtype == np.int8 and np.abs(k8).max() > 100  # the keys are stored as codes
    spread = lf.max() - lf.min()
    assert np.abs(l8 - lf).max() < 0.05 * spread
    assert (l8.argmax(-1) == lf.argmax(-1)).mean() > 0.9


@pytest.mark.parametrize("quants", [("int8",), ("int8", "q8")])
def test_export_with_int8_kv_cache_generates_through_the_runtime(tmp_path: Path, fused_package, quants) -> None:
    """--kv-cache-int8 on dynamic int8 weights, and on int8 plus q8 (8-bit MatMulNBits) at once."""
    _, model = fused_package
    tok = train_tiny_bpe(tmp_path / "tok")
    out = tmp_path / "pkg"
    text = "It is a truth universally acknowledged that she walked to the window. " * 8
    reports = export_package(model, tok, out, name="kv8", variants=("fp32", *quants), tokenizer_type="bpe",
                             tokens={"eos": 0}, int8_min_agree=0.5, fp32_tol=1e-3, verbose=False, quant=quants,
                             val_text=text, kv_int8=True)
    m = load_package(out).manifest
    assert m["graphs"]["kv_dtype"] == {v: "int8" if v in quants else "float32" for v in m["graphs"]["variants"]}
    for q in quants:
        assert "int8 KV cache" in m["validation"]["quantisation"][q]
        assert reports[q]["val_top1_agreement"] >= 0.5
        gen = TextGenerator(load_package(out), device="cpu", threads=1, variant=q)
        assert gen.kv_dtype is np.int8
        ids = gen.tokenizer.encode("It is a truth universally acknowledged")
        got = [t for t, _ in gen.generate_tokens(ids, SamplingConfig(strategy="greedy", max_new_tokens=8))]
        assert len(got) == 8 and gen._prompts.path.kv.arrays[0].dtype == np.int8
        # the step after a cached prefix gives what a fresh prefill of the same tokens gives
        fresh = TextGenerator(load_package(out), device="cpu", threads=1, variant=q)
        again = [t for t, _ in fresh.generate_tokens(ids, SamplingConfig(strategy="greedy", max_new_tokens=8))]
        assert again == got
    fp32 = TextGenerator(load_package(out), device="cpu", threads=1, variant="fp32")
    assert fp32.kv_dtype is np.float32


def test_a_kv_dtype_the_graph_does_not_have_is_refused(tmp_path: Path, fused_package) -> None:
    import json
    import shutil

    from aigc_studio.runtime.package import PackageError, write_package

    src, _ = fused_package
    for kv_dtype, message in (({"fp32": "int8"}, "cache is tensor\\(float\\), but the manifest says int8"),
                              ({"fp32": "float8"}, "kv_dtype of variant 'fp32' is 'float8'")):
        pkg = tmp_path / kv_dtype["fp32"]
        shutil.copytree(src, pkg)
        m = json.loads((pkg / "manifest.json").read_text())
        m["graphs"]["kv_dtype"] = kv_dtype
        del m["files"]
        write_package(pkg, m)
        with pytest.raises(PackageError, match=message):
            TextGenerator(load_package(pkg), device="cpu", variant="fp32")


def test_a_prompt_run_computes_the_last_positions_logits_only(tmp_path: Path, fused_package) -> None:
    """`logits_keep` makes a prompt's run skip the output layer for all but its last position, in every
    variant of the package; 0 gives every position (what scoring needs)."""
    import onnxruntime as ort

    model = _model(120)
    path = tmp_path / "m.onnx"
    graph_fused.build(model, path)
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in s.get_inputs()][-1] == "logits_keep"
    ids = np.arange(3, 20, dtype=np.int64)[None]
    feed = {"input_ids": ids, "position_ids": np.arange(ids.shape[1])[None]}
    feed.update({f"past_key_values.{i}.{w}": np.zeros((1, 2, 0, 16), np.float32)
                 for i in range(2) for w in ("key", "value")})
    every = s.run(["logits"], {**feed, "logits_keep": np.zeros(1, np.int64)})[0]
    last = s.run(["logits"], {**feed, "logits_keep": np.ones(1, np.int64)})[0]
    assert every.shape == (1, 17, 120) and last.shape == (1, 1, 120)
    assert np.abs(last[0, 0] - every[0, -1]).max() < 1e-5

    tok = train_tiny_bpe(tmp_path / "tok")
    for variant in ("fp32", "q4"):
        pkg = tmp_path / variant
        export_package(fused_package[1], tok, pkg,
                       name="keep", variants=(variant,) if variant == "fp32" else ("fp32", variant),
                       tokenizer_type="bpe", tokens={"eos": 0}, int8_min_agree=0.0, fp32_tol=1e-3,
                       verbose=False, quant="q4", val_text="She walked to the window. " * 8)
        gen = TextGenerator(load_package(pkg), device="cpu", threads=1, variant=variant)
        assert gen.step.logits_keep
        ids = gen.tokenizer.encode("It is a truth universally acknowledged that she walked")
        full, _ = gen.forward(np.asarray([ids]), 0, gen.empty_cache())
        kept, kv = gen.forward(np.asarray([ids]), 0, gen.empty_cache(), last_only=True)
        assert kept.shape == (1, 1, full.shape[-1]) and kv.length == len(ids)
        assert np.abs(kept[0, 0] - full[0, -1]).max() < 1e-4
        step, _ = gen.forward(np.asarray([[int(kept[0, 0].argmax())]]), len(ids), kv, last_only=True)
        assert step.shape == (1, 1, full.shape[-1])  # a one-token step is unchanged
