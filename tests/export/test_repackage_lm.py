"""export/onnx/repackage.py: a torch-exported package read back into a TransformerLM and exported again
with the fused-operator graph, weights unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aigc_studio.core.sampling import SamplingConfig  # noqa: E402
from aigc_studio.runtime.package import load_package, write_package  # noqa: E402
from aigc_studio.runtime.text_generator import TextGenerator  # noqa: E402
from export.onnx.lm import export_package  # noqa: E402
from export.onnx.repackage import main, model_from_fused_graph, model_from_graph, repackage  # noqa: E402
from export.train.lm import model_from_checkpoint  # noqa: E402
from tests.export.test_export_lm_cli import _checkpoint  # noqa: E402
from tests.tiny_models import tiny_corpus  # noqa: E402


@pytest.fixture(scope="module")
def old_package(tmp_path_factory) -> tuple[Path, object]:
    """A package as November's exporter wrote it (torch.onnx.export, "buffer" cache), and its model."""
    import sentencepiece as spm

    from export.data.tokenizer import train_tokenizer

    tmp = tmp_path_factory.mktemp("repack")
    tok = train_tokenizer(tiny_corpus(200), tmp / "tok", vocab_size=300)
    sp = spm.SentencePieceProcessor(model_file=str(tok))
    model = model_from_checkpoint(_checkpoint(tmp / "ckpt.pt", sp.vocab_size(), sp.encode,
                                              {"note": "kept"}, pos="learned")).eval()
    out = tmp / "old"
    export_package(model, tok, out, name="old", description="tiny", licence="MIT", sources=[{"id": "x"}],
                   training={"steps": 7, "note": "kept"}, val_text=tiny_corpus(20, 1), graph="torch",
                   int8_min_agree=0.0, verbose=False)
    assert load_package(out).manifest["graphs"]["kv_cache"] == "buffer"
    return out, model


def test_weights_read_back_exactly(old_package) -> None:
    folder, model = old_package
    m = load_package(folder).manifest
    from export.models.lm import LMConfig

    cfg = LMConfig(**{k: v for k, v in m["config"].items() if k in LMConfig.__dataclass_fields__})
    back = model_from_graph(folder / "model.onnx", cfg)
    want = model.state_dict()
    got = back.state_dict()
    assert set(got) == set(want)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)


def test_repackaged_package_is_fused_and_keeps_the_metadata(old_package, tmp_path: Path) -> None:
    folder, _ = old_package
    out = tmp_path / "new"
    reports = repackage(folder, out, tiny_corpus(20, 1), verbose=False)
    old, new = load_package(folder).manifest, load_package(out).manifest
    assert new["graphs"]["kv_cache"] == "shared"
    for key in ("name", "description", "licence", "sources", "config", "tokens", "sampling"):
        assert new[key] == old[key], key
    assert {k: v for k, v in new["training"].items() if k != "reexported"} == old["training"]
    assert "export/onnx/repackage.py" in new["training"]["reexported"]
    assert reports["fp32"]["val_ppl"] == pytest.approx(old["validation"]["fp32"]["val_ppl"], rel=1e-4)
    config = SamplingConfig(strategy="greedy", max_new_tokens=10)
    texts = ["".join(TextGenerator(load_package(p), device="cpu", variant="fp32").stream("The quick", config))
             for p in (folder, out)]
    assert texts[0] == texts[1]


def test_refuses_a_fused_package_and_weights_that_miss_the_reference(old_package, tmp_path: Path) -> None:
    folder, _ = old_package
    fused = tmp_path / "fused"
    repackage(folder, fused, "The end.", verbose=False)
    with pytest.raises(SystemExit, match="already has the fused"):
        main([str(fused)])
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    ref = dict(np.load(bad / "reference.npz"))
    ref["logits"] = ref["logits"] + 0.5  # as if the graph held other weights than the recorded ones
    np.savez(bad / "reference.npz", **ref)
    write_package(bad, json.loads((bad / "manifest.json").read_text()))  # fresh checksums
    with pytest.raises(SystemExit, match="reference.npz"):
        repackage(bad, tmp_path / "never", "The end.", verbose=False)
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("pos, mlp, tie, bias", [("learned", "relu", True, False), ("rope", "swiglu", False, False),
                                                 ("learned", "relu", False, True), ("rope", "swiglu", True, True)])
def test_fused_graph_weights_read_back_exactly(tmp_path: Path, pos: str, mlp: str, tie: bool, bias: bool) -> None:
    """export/onnx/fused.py's graph (q|k|v and gate|up concatenated with their biases, a tied matrix as
    a Transpose) gives back every weight of the model; with biases in the seed's post-LN layout."""
    from export.models.lm import LMConfig, TransformerLM
    from export.onnx import fused as graph_fused
    from export.onnx.lm_graph import dedupe_tied_weights

    cfg = LMConfig(vocab_size=200, block_size=32, n_layer=2, n_head=4, n_kv_head=2 if mlp == "swiglu" else 0,
                   n_embd=32, ffn_hidden=48, norm="rms" if mlp == "swiglu" else "layer", pos=pos, mlp=mlp,
                   tie_embeddings=tie, norm_first=not bias, bias=bias)
    torch.manual_seed(3)
    model = TransformerLM(cfg).eval()
    graph_fused.build(model, tmp_path / "model.onnx")
    if tie:
        assert dedupe_tied_weights(tmp_path / "model.onnx") > 0
    got, want = model_from_fused_graph(tmp_path / "model.onnx", cfg).state_dict(), model.state_dict()
    assert set(got) == set(want)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)


def test_a_fused_package_gets_other_quantised_variants(old_package, tmp_path: Path) -> None:
    """--quant int8,q8 on a fused package: both validated, q8 the default, fp32 text unchanged."""
    folder, _ = old_package
    fused, both = tmp_path / "fused", tmp_path / "both"
    repackage(folder, fused, tiny_corpus(20, 1), verbose=False)
    assert main([str(fused), "--out", str(both), "--quant", "int8,q8", "--val-text",
                 str(_text(tmp_path))]) == 0
    m = load_package(both).manifest
    assert set(m["graphs"]["variants"]) == {"fp32", "int8", "q8"} and m["graphs"]["default"] == "q8"
    assert set(m["validation"]["quantisation"]) == {"int8", "q8"}
    assert {"int8_min_top1_agreement", "q8_min_top1_agreement"} <= set(m["validation"]["tolerance"])
    assert m["validation"]["fp32"]["val_ppl"] == pytest.approx(
        load_package(fused).manifest["validation"]["fp32"]["val_ppl"], rel=1e-5)
    config = SamplingConfig(strategy="greedy", max_new_tokens=10)
    texts = ["".join(TextGenerator(load_package(p), device="cpu", variant="fp32").stream("The quick", config))
             for p in (fused, both)]
    assert texts[0] == texts[1]
    with pytest.raises(SystemExit):
        main([str(fused), "--quant", "int4"])


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "val.txt"
    path.write_text(tiny_corpus(20, 1), encoding="utf-8")
    return path
