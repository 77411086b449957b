"""The model's part of a keystroke's suggestion, replayed without Qt: what the KV cache's logits memo and
the constraint mask save.

    python bench/suggest_replay.py                      # the shipped writer, 2 threads (~3 min)
    python bench/suggest_replay.py --model writer-tiny --threads 1 --chars 400 --json out.json

The writer of `bench/ui_latency.py` types its continuation at the end of the same ~1,000-token
document; every keystroke that does not type through the shown suggestion asks the model, as the
writing pane does (`CompletionPolicy` window, the settings' greedy decoding, 4 words), straight on a
`TextGenerator`. For each request the table gives the time from the call to the first ghost word
(`trim_suggestion` non-empty) and the model runs it took, then the time until the suggestion settled.
The same requests are replayed by a new generator per row, one at a time (an idle session's
spinning threads would slow the others down), the rows in turn and in reverse order in the second
round, so that the machine's drift spreads over them:

- the app: KV cache with the logits of the last call's prompt end and path (`_Cache.logits`), and the
  constraint mask of `PrefixIndex` (a slice of the vocabulary sorted by bytes);
- without the logits memo: the memo is emptied after every call, so each call runs the prompt's last
  token again and every generated token (the runtime before 2026-12-02);
- with the vocabulary scan: the memo, but the constraint mask computed by scanning every token's bytes
  in Python, as `PrefixIndex.allowed` did before;
- full prefill: the cache dropped before every call.
Which keystrokes ask is decided by the app's row; the last column says how often a row's suggestion
was the app's (a full prefill computes the prompt in other runs, so its float rounding, and rarely its
greedy pick, differ).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.text_decode import cpu_flags, vector_isa  # noqa: E402
from bench.ui_latency import CONTINUATION, _document, _pct  # noqa: E402

ROWS = ("the app", "without the logits memo", "with the vocabulary scan", "full prefill")


class ScanIndex:
    """The former `PrefixIndex.allowed`: a Python scan of the tokens that start with the same byte."""

    def __init__(self, tokenizer: Any) -> None:
        self._bytes = [tokenizer.token_bytes(i) for i in range(tokenizer.vocab_size)]
        by_first: dict[int, list[int]] = {}
        for i, b in enumerate(self._bytes):
            if b:
                by_first.setdefault(b[0], []).append(i)
        self._by_first = by_first
        self.vocab_size = tokenizer.vocab_size

    def allowed(self, rest: bytes, prefer_covering: bool = True) -> np.ndarray:
        covering = np.zeros(self.vocab_size, dtype=bool)
        prefixes = np.zeros(self.vocab_size, dtype=bool)
        for i in self._by_first.get(rest[0], ()):
            b = self._bytes[i]
            if b.startswith(rest):
                covering[i] = True
            elif rest.startswith(b):
                prefixes[i] = True
        if prefer_covering and covering.any():
            return covering
        return covering | prefixes


def _generator(model: str, threads: int, row: str) -> tuple[Any, list[int]]:
    from aigc_studio.services.models import ModelChoice, RuntimeBackend

    folder = Path(model)
    backend = RuntimeBackend([folder.parent]) if folder.is_dir() else RuntimeBackend()
    gen = backend.create(ModelChoice(folder.name if folder.is_dir() else model, "cpu", threads))
    if row == "with the vocabulary scan":  # an ablation: the old index inside the app's masks
        gen.constraints._prefix = ScanIndex(gen.tokenizer)
    runs: list[int] = []
    real = gen.step.forward

    def counted(ids: Any, *args: Any, **kwargs: Any) -> Any:
        runs.append(int(ids.shape[1]))
        return real(ids, *args, **kwargs)

    gen.step.forward = counted
    return gen, runs


def _ask(gen: Any, row: str, context: str, config: Any, words: int, runs: list[int]
         ) -> tuple[str, float, float, int]:
    from aigc_studio.core.completion import is_settled, trim_suggestion

    if row == "full prefill":
        gen.reset_cache()
    elif row == "without the logits memo":
        gen._prompts.path.logits = {}  # an ablation: the cache without its logits memo
    runs.clear()
    t0 = time.perf_counter()
    raw, first, first_runs = "", float("nan"), 0
    for piece in gen.stream(context, config):
        raw += piece
        if first != first and trim_suggestion(raw, context, words):
            first, first_runs = time.perf_counter() - t0, len(runs)
        if is_settled(raw, context, words):
            break
    settled = time.perf_counter() - t0
    return trim_suggestion(raw, context, words, finished=True), first, settled, first_runs


def run(model: str, threads: int, chars: int, rounds: int) -> dict[str, Any]:
    from aigc_studio.core.completion import CompletionPolicy, context_start, trim_context_start, type_through
    from aigc_studio.services.settings import Settings

    with tempfile.TemporaryDirectory() as temp:
        config = Settings(Path(temp) / "settings.ini").sampling_config()  # the app's defaults
    policy = CompletionPolicy(context_chars=1600, context_block=256, max_words=4)

    def context(text: str) -> str:
        start = context_start(len(text), policy)
        return trim_context_start(text[start:], start)

    stats: dict[str, dict[str, list[float]]] = {row: {"first": [], "settled": [], "runs": [],
                                                      "same": []} for row in ROWS}
    prompts: list[str] = []  # the requests, as the app's row made them
    expected: list[str] = []
    document, tokens = "", 0
    for r in range(rounds):
        # One generator at a time (idle sessions' spinning threads would slow the others down), the
        # rows in turn and in reverse order every other round, so that drift spreads over them.
        for row in ROWS if r % 2 == 0 else ROWS[::-1]:
            gen, runs = _generator(model, threads, row)
            if not document:
                document, tokens = _document(gen.tokenizer)
            gen.prime(context(document), config)  # the pane reads the text where the cursor rests
            if not prompts:  # the app's row decides which keystrokes ask
                assert row == ROWS[0]
                text, ghost = document, ""
                for char in CONTINUATION[:chars]:
                    text += char
                    if ghost and (rest := type_through(ghost, char)):
                        ghost = rest
                        continue
                    prompts.append(context(text))
                    ghost, first, settled, n = _ask(gen, row, prompts[-1], config,
                                                    policy.max_words, runs)
                    expected.append(ghost)
                    _note(stats[row], ghost, ghost, first, settled, n)
            else:
                for prompt, want in zip(prompts, expected):
                    got, first, settled, n = _ask(gen, row, prompt, config, policy.max_words, runs)
                    _note(stats[row], got, want, first, settled, n)
            del gen, runs
            gc.collect()  # the session and its threads go before the next row's
    return {"model": model, "threads": threads, "document_tokens": tokens, "keystrokes": chars,
            "asked": len(prompts), "rounds": rounds, "rows": stats}


def _note(s: dict[str, list[float]], got: str, want: str, first: float, settled: float,
          n: int) -> None:
    if first == first:
        s["first"].append(first * 1000)
        s["runs"].append(n)
    s["settled"].append(settled * 1000)
    s["same"].append(float(got == want))


def table(result: dict[str, Any]) -> str:
    head = (f"Suggestion replay, model {result['model']}, {result['threads']} thread(s), document of "
            f"~{result['document_tokens']} tokens, {result['keystrokes']} keystrokes of which "
            f"{result['asked']} asked the model, {result['rounds']} rounds "
            f"({platform.machine()} {vector_isa(cpu_flags())}, {os.cpu_count()} CPUs, "
            f"{time.strftime('%Y-%m-%d')})")
    rows = ["| row | first ghost word p50 (ms) | p95 (ms) | model runs to it (mean) "
            "| settled p50 (ms) | first word vs the app | same suggestion |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    base = statistics.median(result["rows"][ROWS[0]]["first"] or [float("nan")])
    for row in ROWS:
        s = result["rows"][row]
        first = statistics.median(s["first"]) if s["first"] else float("nan")
        rows.append(f"| {row} | {first:.1f} | {_pct(s['first'], 0.95):.1f} "
                    f"| {statistics.mean(s['runs']) if s['runs'] else float('nan'):.2f} "
                    f"| {statistics.median(s['settled']):.1f} | {first / base:.2f}x "
                    f"| {100 * statistics.mean(s['same']):.0f}% |")
    return head + "\n\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="writer", help="a package name or folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chars", type=int, default=120, help="how many characters to type")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the rows")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args(argv)
    result = run(args.model, args.threads, args.chars, max(1, args.rounds))
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
