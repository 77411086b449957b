"""export/repackage_lm.py: a torch-exported package read back into a TransformerLM and exported again
with the fused-operator graph, weights unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aigc_studio.runtime.package import load_package, write_package  # noqa: E402
from aigc_studio.runtime.text_generator import TextGenerator  # noqa: E402
from aigc_studio.core.sampling import SamplingConfig  # noqa: E402
from export.export_lm import export_package  # noqa: E402
from export.repackage_lm import main, model_from_graph, repackage  # noqa: E402
from export.train_lm import model_from_checkpoint  # noqa: E402
from tests.export.test_export_lm_cli import _checkpoint  # noqa: E402
from tests.tiny_models import tiny_corpus  # noqa: E402


@pytest.fixture(scope="module")
def old_package(tmp_path_factory) -> tuple[Path, object]:
    """A package as November's exporter wrote it (torch.onnx.export, "buffer" cache), and its model."""
    import sentencepiece as spm

    from export.tokenizer_text import train_tokenizer

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
    from export.model_lm import LMConfig

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
    assert "repackage_lm" in new["training"]["reexported"]
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
