"""`python -m export.onnx.lm` from a checkpoint, with either tokenizer type: a SentencePiece model
(the writing models trained here; the manifest is as before) or a byte-level BPE tokenizer.json (an
imported GGUF model, whose checkpoint carries its special ids)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from aigc_studio.runtime.package import load_package  # noqa: E402
from aigc_studio.runtime.text_generator import TextGenerator  # noqa: E402
from export.models.lm import LMConfig, TransformerLM  # noqa: E402
from export.train.lm import save_checkpoint  # noqa: E402
from tests.tiny_bpe import train_tiny_bpe  # noqa: E402
from tests.tiny_models import tiny_corpus  # noqa: E402


def _checkpoint(path: Path, vocab_size: int, encode, extra: dict | None = None, **cfg) -> Path:
    """A checkpoint of a 1-layer model trained briefly on the tiny corpus (an untrained model picks
    byte and control tokens that the runtime's generator rules out, so greedy parity would fail)."""
    torch.manual_seed(0)
    model = TransformerLM(LMConfig(vocab_size=vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=32,
                                   ffn_hidden=64, norm_first=True, tie_embeddings=True, bias=False, **cfg))
    # export.onnx.lm's default validation prompts, so greedy continuations stay in what the model learned
    prompts = "It is a truth universally acknowledged, that she walked to the window.\n\n" * 40
    ids = torch.tensor(encode(tiny_corpus(200) + prompts))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(150):
            starts = torch.randint(0, len(ids) - 33, (16,), generator=g)
            x = torch.stack([ids[s:s + 32] for s in starts])
            y = torch.stack([ids[s + 1:s + 33] for s in starts])
            _, loss = model(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    save_checkpoint(path, model.eval(), None, 7, {"history": "[]", "val_loss": 2.0, **(extra or {})})
    return path


def test_sentencepiece_checkpoint_exports_as_before(tmp_path: Path) -> None:
    from export.data.tokenizer import train_tokenizer
    from export.onnx.lm import main

    tok = train_tokenizer(tiny_corpus(200), tmp_path / "tok", vocab_size=300)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tok))
    ck = _checkpoint(tmp_path / "ckpt.pt", sp.vocab_size(), sp.encode)
    val = tmp_path / "val.txt"
    val.write_text(tiny_corpus(20, 1))
    out = tmp_path / "pkg"
    assert main(["--checkpoint", str(ck), "--tokenizer", str(tok), "--out", str(out), "--name", "sp",
                 "--val-text", str(val), "--int8-min-agree", "0"]) == 0
    m = load_package(out).manifest
    assert m["tokenizer"] == {"type": "sentencepiece", "file": "tokenizer.model"}
    assert m["tokens"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert "sentencepiece_version" in m and "tokenizers_version" not in m
    assert m["training"]["steps"] == 7
    assert m["validation"]["tolerance"] == {"fp32_max_abs_logit_diff": 1e-3, "int8_min_top1_agreement": 0.0}
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.int8.onnx", "model.onnx",
                                                     "reference.npz", "tokenizer.model"]


def test_bpe_checkpoint_exports_with_its_special_ids(tmp_path: Path) -> None:
    from aigc_studio.runtime.tokenizer import HFTokenizer
    from export.onnx.lm import main

    tok = train_tiny_bpe(tmp_path / "tok")
    tokens = {"pad": 2, "unk": 0, "bos": 1, "eos": 0}
    bpe = HFTokenizer(tok)
    ck = _checkpoint(tmp_path / "ckpt.pt", bpe.vocab_size, bpe.encode, {"tokens": json.dumps(tokens)},
                     norm="rms", pos="rope", mlp="swiglu", n_kv_head=1)
    out = tmp_path / "pkg"
    assert main(["--checkpoint", str(ck), "--tokenizer", str(tok), "--out", str(out), "--name", "bpe",
                 "--variants", "int8", "--int8-min-agree", "0", "--int8-per-channel",
                 "--int8-op-types", "MatMul", "--fp32-tol", "1e-2"]) == 0
    package = load_package(out)
    m = package.manifest
    assert m["tokenizer"] == {"type": "bpe", "file": "tokenizer.json"} and m["tokens"] == tokens
    assert "tokenizers_version" in m and set(m["graphs"]["variants"]) == {"int8"}
    assert m["validation"]["tolerance"]["fp32_max_abs_logit_diff"] == 1e-2
    import onnx

    graph = onnx.load(str(out / "model.int8.onnx")).graph
    assert {n.op_type for n in graph.node} >= {"Gather", "MatMulInteger"}  # the embedding stayed float
    assert not any(n.op_type == "Gather" and "quantized" in n.input[0] for n in graph.node)
    gen = TextGenerator(package, device="cpu")
    assert gen.eos_id == 0 and isinstance(gen.tokenizer, HFTokenizer)


@pytest.mark.parametrize("quant, ops", [("q4", {"MatMulNBits", "GatherBlockQuantized"}), ("q8", {"MatMulNBits"})])
def test_weight_only_block_quantisation(tmp_path: Path, quant: str, ops: set[str]) -> None:
    """q4/q8: MatMulNBits (and a 4-bit embedding) validated through the runtime like int8."""
    import onnx

    from aigc_studio.core.sampling import SamplingConfig
    from aigc_studio.runtime.text_generator import TextGenerator
    from aigc_studio.runtime.tokenizer import HFTokenizer
    from export.onnx.lm import main

    tok = train_tiny_bpe(tmp_path / "tok")
    bpe = HFTokenizer(tok)
    ck = _checkpoint(tmp_path / "ckpt.pt", bpe.vocab_size, bpe.encode, {"tokens": json.dumps({"eos": 0})},
                     norm="rms", pos="rope", mlp="swiglu", n_kv_head=1)
    out = tmp_path / "pkg"
    assert main(["--checkpoint", str(ck), "--tokenizer", str(tok), "--out", str(out), "--name", "bq",
                 "--quant", quant, "--int8-min-agree", "0.5", "--fp32-tol", "1e-2"]) == 0
    m = load_package(out).manifest
    assert set(m["graphs"]["variants"]) == {"fp32", quant}
    assert m["graphs"]["default"] == quant  # the CPU runs the quantised graph unless asked otherwise
    assert m["validation"]["tolerance"][f"{quant}_min_top1_agreement"] == 0.5
    assert m["validation"][quant]["val_top1_agreement"] >= 0.5 and quant in m["validation"]["quantisation"]
    graph = onnx.load(str(out / f"model.{quant}.onnx")).graph
    assert {n.op_type for n in graph.node} >= ops
    gen = TextGenerator(load_package(out), device="cpu", variant=quant)
    assert len(list(gen.generate_tokens(bpe.encode("The quick"), SamplingConfig(max_new_tokens=4)))) == 4
