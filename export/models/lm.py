"""The Transformer language model of the workshop, readable from top to bottom.

The seed's `TransformerLM` (token embedding + learned positions, post-LN blocks of multi-head attention
and a ReLU feed-forward, a final LayerNorm and an output layer) is the default layout. Its two defects
are fixed here: attention is causal, and generation reads the logits of the last *position* rather than
the last batch row. Everything that improves on the seed is a config field, so the seed's own layout
stays one config away (`LMConfig.seed()`), and a Llama-style layout (RMSNorm, rotary positions,
grouped-query attention, SwiGLU, tied embeddings) is another (`norm="rms", pos="rope", mlp="swiglu"`).

Three forward paths share the weights (Attention.forward takes the one its caller names):
- `forward(idx)` for training: fused scaled-dot-product attention with a causal flag.
- `forward_cached(input_ids, position_ids, past)` for generation in PyTorch: plain matmul/softmax
  attention (standard ONNX ops only) over the concatenation of the past keys/values and the new ones.
- `forward_buffered(input_ids, position_ids, buffers)` for export: the same attention, but the past is a
  fixed-capacity buffer (B, H_kv, capacity, D) whose first `position_ids[:, 0]` slots are valid, and only
  the new tokens' keys/values are returned. The caller writes them into its buffer in place, so a decode
  step no longer copies the whole cache (a Concat of past and new rewrites it every token).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

KV = tuple[torch.Tensor, torch.Tensor]  # (B, H_kv, T, D) each


@dataclass
class LMConfig:
    vocab_size: int = 8000      # tokenizer vocabulary
    block_size: int = 512       # context length (learned positions, or the RoPE cache length)
    n_layer: int = 6            # transformer blocks
    n_head: int = 8             # query heads
    n_kv_head: int = 0          # key/value heads (grouped-query attention); 0 = same as n_head
    n_embd: int = 512           # model width
    ffn_hidden: int = 2048      # feed-forward width
    dropout: float = 0.0        # dropout on attention output, MLP output and embeddings
    norm_first: bool = False    # False = post-LN (the seed), True = pre-LN (trains more stably)
    norm: str = "layer"         # "layer" (LayerNorm) or "rms" (RMSNorm)
    norm_eps: float = 1e-5
    pos: str = "learned"        # "learned" absolute positions (the seed) or "rope"
    rope_theta: float = 10000.0
    mlp: str = "relu"           # "relu" (the seed), "gelu" or "swiglu"
    bias: bool = True           # biases in linear layers
    tie_embeddings: bool = False  # share the token embedding with the output layer

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def seed(cls) -> LMConfig:
        """The seed's configuration: 6 post-LN layers, width 512, 8 heads, FFN 2048, vocabulary 10,000."""
        return cls(vocab_size=10_000, block_size=512, n_layer=6, n_head=8, n_embd=512, ffn_hidden=2048)

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- building blocks


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Plain ops so that the ONNX graph stays standard: x / sqrt(mean(x^2) + eps) * g
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def make_norm(cfg: LMConfig) -> nn.Module:
    return RMSNorm(cfg.n_embd, cfg.norm_eps) if cfg.norm == "rms" else nn.LayerNorm(cfg.n_embd, eps=cfg.norm_eps)


def rope_tables(cfg: LMConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (block_size, head_dim/2) for rotate-half RoPE."""
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float32) / cfg.head_dim))
    t = torch.arange(cfg.block_size, dtype=torch.float32)
    freqs = torch.outer(t, inv)
    return freqs.cos(), freqs.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x (B, H, T, D); cos/sin (B, 1, T, D/2); rotate-half convention (HF Llama)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        hd, kvh = cfg.head_dim, cfg.kv_heads
        assert cfg.n_embd % cfg.n_head == 0 and cfg.n_head % kvh == 0
        self.q = nn.Linear(cfg.n_embd, cfg.n_head * hd, bias=cfg.bias)
        self.k = nn.Linear(cfg.n_embd, kvh * hd, bias=cfg.bias)
        self.v = nn.Linear(cfg.n_embd, kvh * hd, bias=cfg.bias)
        self.o = nn.Linear(cfg.n_head * hd, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def _split(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, heads, self.cfg.head_dim).transpose(1, 2)  # (B, H, T, D)

    def _repeat_kv(self, x: torch.Tensor) -> torch.Tensor:
        rep = self.cfg.n_head // self.cfg.kv_heads
        if rep == 1:
            return x
        B, H, T, D = x.shape
        return x[:, :, None].expand(B, H, rep, T, D).reshape(B, H * rep, T, D)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None,
                past: KV | None = None, past_len: torch.Tensor | None = None,
                cached: bool = False) -> tuple[torch.Tensor, KV | None]:
        """Attention output (B, T, C) and the keys/values to keep, by one of three paths:
        - training (the default): causal attention within x, fused scaled-dot-product attention;
        - `cached`: explicit attention (standard ONNX ops) over `past` (or nothing) followed by x;
          returns past + new keys/values (`forward_cached`, the "concat" export);
        - `past_len` given: `past` is a buffer whose first past_len slots are valid; returns the new
          keys/values only (`forward_buffered`, the "buffer" export)."""
        q = self._split(self.q(x), self.cfg.n_head)       # (B, H, T, D)
        k = self._split(self.k(x), self.cfg.kv_heads)     # (B, Hkv, T, D)
        v = self._split(self.v(x), self.cfg.kv_heads)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if past_len is not None:
            return self._buffered(q, k, v, past, past_len), (k, v)
        if cached:
            return self._concat(q, k, v, past)
        y = F.scaled_dot_product_attention(q, self._repeat_kv(k), self._repeat_kv(v), is_causal=True,
                                           dropout_p=self.cfg.dropout if self.training else 0.0)
        return self._out(y), None

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        B, H, T, D = y.shape
        return self.drop(self.o(y.transpose(1, 2).reshape(B, T, H * D)))  # (B, T, C)

    def _concat(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past: KV | None) -> tuple[torch.Tensor, KV]:
        """Explicit causal attention over past + new keys; query i sits at absolute position P+i."""
        if past is not None:
            k = torch.cat([past[0], k], dim=2)            # (B, Hkv, P+T, D)
            v = torch.cat([past[1], v], dim=2)
        kr, vr = self._repeat_kv(k), self._repeat_kv(v)
        T, S = q.shape[2], kr.shape[2]
        P = S - T
        att = (q @ kr.transpose(-2, -1)) * (1.0 / math.sqrt(self.cfg.head_dim))  # (B, H, T, S)
        qpos = torch.arange(T, device=q.device).unsqueeze(1) + P
        kpos = torch.arange(S, device=q.device).unsqueeze(0)
        att = att.masked_fill(kpos > qpos, float("-inf"))
        return self._out(att.softmax(dim=-1) @ vr), (k, v)                    # (B, H, T, D) -> (B, T, C)

    def _buffered(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, buf: KV,
                  past_len: torch.Tensor) -> torch.Tensor:
        """Attention of the new queries over a past buffer (B, Hkv, S, D) whose slots >= past_len (B,)
        are masked, plus causal attention over the new keys; one softmax over both parts.
        The buffer is only ever a MatMul operand as it is: no Transpose of it and no repeat of its heads
        (either would copy the whole cache every step). Query heads are grouped by their KV head instead."""
        B, H, T, D = q.shape
        pk, pv = buf                                                   # (B, Hkv, S, D)
        Hkv, S = pk.shape[1], pk.shape[2]
        scale = 1.0 / math.sqrt(self.cfg.head_dim)
        qg = q.reshape(B, Hkv, (H // Hkv) * T, D)                      # query heads j*rep..j*rep+rep-1 -> kv head j
        s_past = (pk @ qg.transpose(-2, -1)).transpose(-2, -1)        # (B, Hkv, rep*T, S)
        s_past = s_past.reshape(B, H, T, S) * scale
        slot = torch.arange(S, device=q.device).view(1, 1, 1, -1)
        s_past = s_past.masked_fill(slot >= past_len.view(B, 1, 1, 1), float("-inf"))
        kr, vr = self._repeat_kv(k), self._repeat_kv(v)               # (B, H, T, D): new tokens only
        s_new = (q @ kr.transpose(-2, -1)) * scale                    # (B, H, T, T)
        future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
        s_new = s_new.masked_fill(future, float("-inf"))
        att = torch.cat([s_past, s_new], dim=-1).softmax(dim=-1)     # (B, H, T, S+T)
        y_past = att[..., :S].reshape(B, Hkv, (H // Hkv) * T, S) @ pv  # (B, Hkv, rep*T, D)
        return self._out(y_past.reshape(B, H, T, D) + att[..., S:] @ vr)  # (B, H, T, D) -> (B, T, C)


class MLP(nn.Module):
    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.kind = cfg.mlp
        self.up = nn.Linear(cfg.n_embd, cfg.ffn_hidden, bias=cfg.bias)
        if cfg.mlp == "swiglu":
            self.gate = nn.Linear(cfg.n_embd, cfg.ffn_hidden, bias=cfg.bias)
        self.down = nn.Linear(cfg.ffn_hidden, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "swiglu":
            h = F.silu(self.gate(x)) * self.up(x)
        elif self.kind == "gelu":
            h = F.gelu(self.up(x))
        else:
            h = F.relu(self.up(x))
        return self.drop(self.down(h))


class Block(nn.Module):
    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.norm_first = cfg.norm_first
        self.ln1, self.attn = make_norm(cfg), Attention(cfg)
        self.ln2, self.mlp = make_norm(cfg), MLP(cfg)

    def forward(self, x: torch.Tensor, rope, past: KV | None = None, past_len: torch.Tensor | None = None,
                cached: bool = False) -> tuple[torch.Tensor, KV | None]:
        """`past`, `past_len` and `cached` pick the attention's path (see Attention.forward)."""
        if self.norm_first:  # pre-LN: x + f(norm(x))
            a, present = self.attn(self.ln1(x), rope, past, past_len, cached)
            x = x + a
            x = x + self.mlp(self.ln2(x))
        else:                # post-LN (the seed, as nn.TransformerEncoderLayer): norm(x + f(x))
            a, present = self.attn(x, rope, past, past_len, cached)
            x = self.ln1(x + a)
            x = self.ln2(x + self.mlp(x))
        return x, present


# ----------------------------------------------------------------------------- the model


class TransformerLM(nn.Module):
    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd) if cfg.pos == "learned" else None
        if cfg.pos == "rope":
            cos, sin = rope_tables(cfg)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = make_norm(cfg)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        # GPT-2's scaled init of the residual projections keeps the residual stream's variance flat.
        for name, p in self.named_parameters():
            if name.endswith(("attn.o.weight", "mlp.down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _embed(self, input_ids: torch.Tensor, position_ids: torch.Tensor):
        x = self.wte(input_ids)                                    # (B, T, C)
        rope = None
        if self.wpe is not None:
            x = x + self.wpe(position_ids)
        else:
            rope = (self.rope_cos[position_ids].unsqueeze(1),      # (B, 1, T, D/2)
                    self.rope_sin[position_ids].unsqueeze(1))
        return self.drop(x), rope

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Training path: logits (B, T, V) and, with targets, the mean cross-entropy."""
        B, T = idx.shape
        assert T <= self.cfg.block_size, f"sequence of {T} tokens exceeds block_size {self.cfg.block_size}"
        pos = torch.arange(T, device=idx.device).unsqueeze(0).expand(B, T)
        x, rope = self._embed(idx, pos)
        for block in self.blocks:
            x, _ = block(x, rope)
        logits = self.lm_head(self.ln_f(x))                        # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    def forward_cached(self, input_ids: torch.Tensor, position_ids: torch.Tensor,
                       past: list[KV] | None = None) -> tuple[torch.Tensor, list[KV]]:
        """Export path: new tokens (B, T) at absolute positions (B, T) after `past` -> logits, presents."""
        x, rope = self._embed(input_ids, position_ids)
        presents: list[KV] = []
        for i, block in enumerate(self.blocks):
            x, present = block(x, rope, None if past is None else past[i], cached=True)
            presents.append(present)
        return self.lm_head(self.ln_f(x)), presents

    def forward_buffered(self, input_ids: torch.Tensor, position_ids: torch.Tensor,
                         buffers: list[KV]) -> tuple[torch.Tensor, list[KV]]:
        """Export path: new tokens (B, T) at positions (B, T); `buffers` per layer (B, H_kv, S, D) of which
        the first position_ids[:, 0] slots hold the past -> logits (B, T, V) and the new keys/values
        (B, H_kv, T, D) per layer (the caller stores them at slots P..P+T-1)."""
        x, rope = self._embed(input_ids, position_ids)
        past_len = position_ids[:, 0]                               # (B,)
        news: list[KV] = []
        for i, block in enumerate(self.blocks):
            x, new = block(x, rope, buffers[i], past_len=past_len)
            news.append(new)
        return self.lm_head(self.ln_f(x)), news

    def empty_past(self, batch: int = 1) -> list[KV]:
        shape = (batch, self.cfg.kv_heads, 0, self.cfg.head_dim)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in range(self.cfg.n_layer)]

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, use_cache: bool = True) -> torch.Tensor:
        """Sample continuations of idx (B, T). The seed's defect is fixed: the logits of the last
        position (`[:, -1, :]`) are used, not the last batch row (`[-1]`). `use_cache=False` recomputes
        the whole window every step, as the seed did."""
        past = None
        pos = idx.shape[1]
        nxt = idx
        for _ in range(max_new_tokens):
            if use_cache and pos < self.cfg.block_size:
                B, T = nxt.shape
                position_ids = torch.arange(pos - T, pos).unsqueeze(0).expand(B, T)
                logits, past = self.forward_cached(nxt, position_ids, past)
            else:
                window = idx[:, -self.cfg.block_size:]
                logits, _ = self(window)
                past = None
            logits = logits[:, -1, :]                               # (B, V): last position
            if temperature <= 0:
                tok = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = float("-inf")
                tok = torch.multinomial(F.softmax(logits, dim=-1), 1)
            idx = torch.cat([idx, tok], dim=1)
            nxt = tok
            pos += 1
        return idx


@torch.no_grad()
def greedy(model: TransformerLM, ids: list[int], n: int, use_cache: bool = False) -> list[int]:
    """The workshop's one torch greedy reference: `n` argmax tokens after `ids` (batch 1), through
    `TransformerLM.generate`. Without the cache (the default) each step reruns the whole window, the
    plainest path, which the exported graphs are checked against (export.onnx.validate_lm)."""
    idx = model.generate(torch.tensor([ids]), n, temperature=0.0, use_cache=use_cache)
    return idx[0, len(ids):].tolist()
