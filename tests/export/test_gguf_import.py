"""Importing a Llama-style GGUF: the query/key row permutation, the weights, the config and the BPE
tokenizer, on a tiny GGUF written here with the `gguf` package. Tests marked `pretrained` check the real
SmolLM2 file (run with -m pretrained after `python -m export.train.from_gguf`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")

from export.models.lm import LMConfig, TransformerLM, apply_rope  # noqa: E402
from export.train.from_gguf import (  # noqa: E402
    bpe_tokenizer,
    gguf_vocabulary,
    load_gguf_model,
    manifest_tokens,
    unpermute_rope_rows,
)
from tests.tiny_bpe import TRICKY, gguf_like_vocabulary, reference_bpe, train_tiny_bpe  # noqa: E402

SMOLLM_GGUF = Path("runs/cache/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute, as llama.cpp writes query/key rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def test_unpermute_inverts_llama_cpp_permutation() -> None:
    w = np.random.default_rng(0).standard_normal((3 * 8, 5)).astype(np.float32)
    assert np.array_equal(unpermute_rope_rows(llama_cpp_permute(w, 3), 3), w)
    assert not np.array_equal(llama_cpp_permute(w, 3), w)


def test_interleaved_rope_on_permuted_rows_is_rotate_half_on_the_original() -> None:
    """Why the permutation exists: llama.cpp's interleaved RoPE over permuted rows gives the same
    rotated vectors as rotate-half RoPE over the original rows (in permuted order), so attention scores
    agree. Undoing the permutation lets the model use rotate-half RoPE."""
    n_head, D, C, T = 2, 8, 6, 5
    cfg = LMConfig(n_embd=n_head * D, n_head=n_head, block_size=16, pos="rope", rope_theta=100.0)
    rng = np.random.default_rng(1)
    w = rng.standard_normal((n_head * D, C)).astype(np.float32)
    x = torch.from_numpy(rng.standard_normal((T, C)).astype(np.float32))
    from export.models.lm import rope_tables

    cos, sin = rope_tables(cfg)
    cos, sin = cos[:T], sin[:T]                                            # (T, D/2)
    q = (x @ torch.from_numpy(w).T).view(T, n_head, D).transpose(0, 1)     # (H, T, D)
    rotated = apply_rope(q[None], cos[None, None], sin[None, None])[0]      # rotate-half
    qp = (x @ torch.from_numpy(llama_cpp_permute(w, n_head)).T).view(T, n_head, D // 2, 2).transpose(0, 1)
    a, b = qp[..., 0], qp[..., 1]                                          # interleaved pairs (2i, 2i+1)
    inter = torch.stack([a * cos - b * sin, b * cos + a * sin], -1).reshape(n_head, T, D)
    perm = llama_cpp_permute(np.arange(D)[:, None], 1)[:, 0]               # the row order within a head
    assert torch.allclose(inter, rotated[..., perm], atol=1e-5)


def write_tiny_gguf(path: Path, model: TransformerLM, vocab: dict) -> None:
    """A llama GGUF of `model` as llama.cpp's converter writes it: permuted query/key rows, tied
    output, one tensor quantised (Q8_0) and the rest float32."""
    cfg = model.cfg
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(cfg.n_layer)
    w.add_context_length(4 * cfg.block_size)
    w.add_embedding_length(cfg.n_embd)
    w.add_feed_forward_length(cfg.ffn_hidden)
    w.add_head_count(cfg.n_head)
    w.add_head_count_kv(cfg.kv_heads)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.norm_eps)
    w.add_rope_dimension_count(cfg.head_dim)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(vocab["tokens"])
    w.add_token_types(vocab["token_types"])
    w.add_token_merges(vocab["merges"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", sd["wte.weight"])
    w.add_tensor("output_norm.weight", sd["ln_f.weight"])
    names = {"ln1": "attn_norm", "ln2": "ffn_norm", "attn.q": "attn_q", "attn.k": "attn_k", "attn.v": "attn_v",
             "attn.o": "attn_output", "mlp.gate": "ffn_gate", "mlp.up": "ffn_up", "mlp.down": "ffn_down"}
    for i in range(cfg.n_layer):
        for ours, theirs in names.items():
            t = sd[f"blocks.{i}.{ours}.weight"]
            if ours == "attn.q":
                t = llama_cpp_permute(t, cfg.n_head)
            elif ours == "attn.k":
                t = llama_cpp_permute(t, cfg.kv_heads)
            if ours == "mlp.down" and i == 0:
                q8 = gguf.quants.quantize(t, gguf.GGMLQuantizationType.Q8_0)
                w.add_tensor(f"blk.{i}.{theirs}.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
                continue
            w.add_tensor(f"blk.{i}.{theirs}.weight", np.ascontiguousarray(t))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TransformerLM, Path]:
    folder = tmp_path_factory.mktemp("gguf")
    tok_json = train_tiny_bpe(folder)
    vocab = gguf_like_vocabulary(tok_json)
    torch.manual_seed(0)
    cfg = LMConfig(vocab_size=len(vocab["tokens"]), block_size=32, n_layer=2, n_head=4, n_kv_head=2,
                   n_embd=64, ffn_hidden=96, norm_first=True, norm="rms", norm_eps=1e-5, pos="rope",
                   rope_theta=100000.0, mlp="swiglu", bias=False, tie_embeddings=True)
    model = TransformerLM(cfg).eval()
    for name, p in model.named_parameters():
        if name.endswith(("ln1.weight", "ln2.weight", "ln_f.weight")):
            p.data.uniform_(0.5, 1.5)  # not all ones, so a norm mix-up would show
    path = folder / "tiny.gguf"
    write_tiny_gguf(path, model, vocab)
    # The reference model holds what the file holds: the Q8_0 tensor dequantised.
    from gguf.quants import dequantize

    down = model.blocks[0].mlp.down.weight
    q8 = gguf.quants.quantize(down.detach().numpy(), gguf.GGMLQuantizationType.Q8_0)
    down.data = torch.from_numpy(dequantize(q8, gguf.GGMLQuantizationType.Q8_0).copy())
    return path, model, tok_json


def test_config_is_read_from_the_file(tiny_gguf) -> None:
    path, model, _ = tiny_gguf
    imported = load_gguf_model(path, block_size=16)
    want = {**model.cfg.to_dict(), "block_size": 16}
    assert imported.cfg.to_dict() == want
    assert imported.lm_head.weight is imported.wte.weight  # tied, as in the file (no output.weight)


def test_imported_model_computes_what_the_original_does(tiny_gguf) -> None:
    path, model, _ = tiny_gguf
    imported = load_gguf_model(path, block_size=32)
    ids = torch.randint(0, model.cfg.vocab_size, (2, 20), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want, got = model(ids)[0], imported(ids)[0]
        wrong = load_gguf_model(path, block_size=32, unpermute=False)(ids)[0]
    assert torch.allclose(got, want, atol=1e-5), float((got - want).abs().max())
    assert not torch.allclose(wrong, want, atol=1e-3)  # the permutation matters (RoPE pairs)


def test_tokenizer_rebuilt_from_gguf_vocabulary_matches_reference(tiny_gguf, tmp_path: Path) -> None:
    pytest.importorskip("regex")
    from aigc_studio.runtime.tokenizer import HFTokenizer

    path, _, tok_json = tiny_gguf
    vocab = gguf_vocabulary(path)
    assert vocab["pre"] == "smollm" and not vocab["add_bos"]
    assert manifest_tokens(vocab) == {"pad": 2, "unk": 0, "bos": 1, "eos": 0}  # <|endoftext|> ends a text
    rebuilt = tmp_path / "tokenizer.json"
    bpe_tokenizer(vocab["tokens"], vocab["merges"], vocab["token_types"]).save(str(rebuilt))
    ours, trained = HFTokenizer(rebuilt), HFTokenizer(tok_json)
    assert ours.special_ids() == [0, 1, 2]
    for s in TRICKY:
        want = reference_bpe(s, vocab["tokens"], vocab["merges"])
        assert ours.encode(s) == want == trained.encode(s), s
        assert ours.decode(want) == s


# ------------------------------------------------------------------------ the real SmolLM2 file

pretrained = pytest.mark.pretrained
needs_gguf = pytest.mark.skipif(not SMOLLM_GGUF.exists(), reason=f"{SMOLLM_GGUF} not present "
                                "(python -m export.train.from_gguf fetches it)")


@pretrained
@needs_gguf
def test_smollm2_tokenizer_matches_reference_bpe(tmp_path: Path) -> None:
    pytest.importorskip("regex")
    from aigc_studio.runtime.tokenizer import HFTokenizer

    vocab = gguf_vocabulary(SMOLLM_GGUF)
    assert len(vocab["tokens"]) == 49152 and vocab["pre"] == "smollm"
    assert [vocab["tokens"][i] for i in range(3)] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    path = tmp_path / "tokenizer.json"
    bpe_tokenizer(vocab["tokens"], vocab["merges"], vocab["token_types"]).save(str(path))
    tok = HFTokenizer(path)
    assert tok.special_ids() == list(range(17))  # the 17 control tokens (type 3)
    for s in TRICKY + ["It is a truth universally acknowledged, that a single man in possession of a good "
                       "fortune, must be in want of a wife.", "3.14159 and 1,000,000\t€12"]:
        ids = tok.encode(s)
        assert ids == reference_bpe(s, vocab["tokens"], vocab["merges"]), s
        assert tok.decode(ids) == s
    assert tok.encode(" the") == [vocab["tokens"].index("\u0120the")]
    assert [tok.token_bytes(i) for i in tok.encode("2024")] == [b"2", b"0", b"2", b"4"]


@pretrained
@needs_gguf
def test_smollm2_perplexity_on_prose(tmp_path: Path) -> None:
    """DATA.md: 20-27 on ordinary English prose; with the permutation left in, far higher (about 150
    there; 360-540 measured here on Persuasion and Brown). This modern paragraph scores about 15."""
    from aigc_studio.runtime.tokenizer import HFTokenizer
    from export.train.from_gguf import perplexity

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    vocab = gguf_vocabulary(SMOLLM_GGUF)
    path = tmp_path / "tokenizer.json"
    bpe_tokenizer(vocab["tokens"], vocab["merges"], vocab["token_types"]).save(str(path))
    text = ("The city council met on Tuesday night to discuss the new budget. Several residents spoke "
            "about the need for better roads and more money for the public schools. The mayor said that "
            "the town could not afford to raise taxes this year, but she promised to look for savings in "
            "other departments. After two hours of debate, the council voted to delay a decision until "
            "next month, when the final figures from the state would be available. ") * 1
    ids = HFTokenizer(path).encode(text)
    try:
        ppl, n = perplexity(load_gguf_model(SMOLLM_GGUF, block_size=512), ids, window=512, stride=256)
        wrong, _ = perplexity(load_gguf_model(SMOLLM_GGUF, block_size=512, unpermute=False), ids)
    finally:
        torch.set_num_threads(threads)
    assert n == len(ids) - 1
    assert 3 < ppl < 30, ppl
    assert wrong > 3 * ppl, (wrong, ppl)


def test_import_command_writes_a_checkpoint_and_tokenizer(tiny_gguf, tmp_path: Path) -> None:
    import json

    from export.train.from_gguf import main
    from export.train.lm import load_checkpoint, model_from_checkpoint
    from tests.tiny_models import tiny_corpus

    path, model, _ = tiny_gguf
    text = tmp_path / "val.txt"
    text.write_text(tiny_corpus(20))
    out = tmp_path / "run"
    assert main(["--gguf", str(path), "--out", str(out), "--block-size", "32", "--check-text", str(text),
                 "--check-tokens", "100"]) == 0
    assert (out / "tokenizer.json").exists()
    ck = load_checkpoint(out / "ckpt.pt")
    assert json.loads(ck["tokens"])["eos"] == 0
    checks = json.loads(ck["checks"])
    assert checks["val_ppl"]["tokens"] == 99 and checks["val_ppl"]["ppl"] > 1
    loaded = model_from_checkpoint(out / "ckpt.pt")
    ids = torch.arange(10)[None]
    with torch.no_grad():
        assert torch.allclose(loaded(ids)[0], model(ids)[0], atol=1e-5)
