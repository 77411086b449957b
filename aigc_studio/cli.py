"""The `aigc-studio` command: the desktop app, and the command-line tools around the same runtime.

    aigc-studio [FILE]                       open the app (on FILE)
    aigc-studio complete [options] PROMPT    continue a prompt ('-' reads standard input)
    aigc-studio models                       list installed model packages
    aigc-studio eval perplexity --model NAME FILE
    aigc-studio eval keystrokes --model NAME FILE
    aigc-studio eval bleu|rouge --model NAME FILE   continue held-out passages, score the second halves
    aigc-studio eval fid --model NAME        domain FID/KID of an image model
    aigc-studio generate [options] -o OUT    images with an image model
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from aigc_studio.core.sampling import FIELDS, PRESETS, STOP_MODES, STRATEGIES, SamplingConfig

DEFAULT_TEXT_MODEL = "writer-tiny"
SUBCOMMANDS = ("complete", "models", "eval", "generate")


def _default_text_model(registry: Any) -> str:
    return registry.default_name("text-lm") or DEFAULT_TEXT_MODEL


def _add_sampling_options(p: argparse.ArgumentParser) -> None:
    def opt(flag: str, field: str, **kw: Any) -> None:
        s = FIELDS[field]
        p.add_argument(flag, dest=field, default=None, help=f"{s.help} ({s.range_text()})", **kw)

    opt("--strategy", "strategy", choices=STRATEGIES)
    opt("--temperature", "temperature", type=float)
    opt("--top-k", "top_k", type=int)
    opt("--top-p", "top_p", type=float)
    opt("--min-p", "min_p", type=float)
    opt("--beams", "num_beams", type=int)
    opt("--length-penalty", "length_penalty", type=float)
    opt("--num-return", "num_return", type=int)
    opt("--repetition-penalty", "repetition_penalty", type=float)
    opt("--max-tokens", "max_new_tokens", type=int)
    opt("--seed", "seed", type=int)
    opt("--stop", "stop", choices=STOP_MODES)
    p.add_argument("--preset", choices=tuple(PRESETS), help="start from the app's preset of that name "
                   "(" + "; ".join(f"{k}: {v.describe()}" for k, v in PRESETS.items()) + "); the "
                   "options above change it (default: greedy, 32 tokens)")


def _sampling_config(args: argparse.Namespace) -> SamplingConfig:
    changes = {name: getattr(args, name) for name in FIELDS if getattr(args, name, None) is not None}
    base = PRESETS[args.preset] if getattr(args, "preset", None) else SamplingConfig()
    return base.with_(**changes).validated()


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="aigc-studio", description="AIGC Studio: offline writing and "
                                 "design assistant. Without a command, opens the app.")
    sub = ap.add_subparsers(dest="command")

    c = sub.add_parser("complete", help="continue a prompt with a text model")
    c.add_argument("prompt", help="the prompt, or '-' to read it from standard input")
    c.add_argument("--model", help="model package name (default: the default writing model)")
    c.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    c.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = its default)")
    c.add_argument("--variant", help="graph variant of the package (e.g. fp32, int8)")
    c.add_argument("--json", action="store_true", help="print a JSON record instead of the text")
    _add_sampling_options(c)

    sub.add_parser("models", help="list installed model packages").add_argument(
        "--json", action="store_true")

    e = sub.add_parser("eval", help="evaluate a model")
    esub = e.add_subparsers(dest="metric", required=True)
    ppl = esub.add_parser("perplexity", help="perplexity of a text model on a UTF-8 text file")
    ppl.add_argument("file")
    ppl.add_argument("--model")
    ppl.add_argument("--variant")
    ppl.add_argument("--max-tokens", type=int, default=0, help="score only the first N tokens")
    def text_eval(name: str, help: str) -> argparse.ArgumentParser:
        p = esub.add_parser(name, help=help)
        p.add_argument("file")
        p.add_argument("--model")
        p.add_argument("--variant")
        p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = its default)")
        p.add_argument("--json", action="store_true", help="print a JSON record")
        _add_sampling_options(p)
        return p

    ks = text_eval("keystrokes", "keystrokes inline suggestions save a writer typing a UTF-8 text file (the "
                   "app's completion policy and keys; deterministic)")
    ks.add_argument("--max-chars", type=int, default=0, help="type only the first N characters")
    ks.add_argument("--max-words", type=int, default=4, help="words per suggestion (the app's default: 4)")
    ks.add_argument("--alternatives", type=int, default=1, metavar="N",
                    help="with greedy or beam settings, also offer up to N alternatives as Alt+] does "
                         "(the likeliest first words, each continued); the writer presses Alt+] until "
                         "one matches, one key each (default 1: none)")
    ks.add_argument("--no-top-up", action="store_true",
                    help="leave out what the editor does when a suggestion has been typed down to its last "
                         "word (ask again, and lengthen the ghost text with an answer that begins with it)")
    for metric, what in (("bleu", "sacrebleu's corpus BLEU"), ("rouge", "ROUGE-1/2/L F1 (rouge-score)")):
        ov = text_eval(metric, f"{what} of a text model continuing the first half of passages of a UTF-8 text "
                       "file, against their true second half (greedy by default; --json gives both metrics)")
        ov.add_argument("--passages", type=int, default=50, help="passages spread evenly over the file")
        ov.add_argument("--words", type=int, default=64, help="words per passage: half prompt, half reference")
    rep = text_eval("repetition", "how much a text model repeats itself: it continues passages of a UTF-8 "
                    "text file for --tokens tokens (greedy by default, --preset Balanced as Continue) and "
                    "reports the share of repeated word 4-grams and distinct-2")
    rep.add_argument("--passages", type=int, default=20, help="passages spread evenly over the file")
    rep.add_argument("--words", type=int, default=120, help="words of each passage given as the prompt")
    rep.add_argument("--tokens", type=int, default=200, help="tokens of each continuation")
    fid = esub.add_parser("fid", help="domain FID and KID of an image model: its images against real ones, "
                          "in the feature space of an image-features package")
    fid.add_argument("--model", help="image model package name (default: the default image model)")
    fid.add_argument("--features", help="image-features package (default: emoji-features)")
    fid.add_argument("--samples", type=int, default=0,
                     help="images to generate (default: as many as the held-out real set, so the floor compares)")
    fid.add_argument("--seed", type=int, default=0, help="first seed; seeds seed .. seed+N-1 are used")
    fid.add_argument("--truncation", type=float, default=1.0, help="truncation psi (StyleGAN-style models)")
    fid.add_argument("--text", default="", help="condition text (conditional models; default none)")
    fid.add_argument("--threads", type=int, default=0)
    fid.add_argument("--json", action="store_true", help="print a JSON record")
    cond = esub.add_parser("condition", help="how a text condition steers an image model: the share of images "
                           "made for an emoji's label that the feature classifier puts in that emoji's class, "
                           "against the same seeds without the text")
    cond.add_argument("--model", help="image model package name (default: the default image model)")
    cond.add_argument("--features", help="image-features package with labels (default: emoji-features)")
    cond.add_argument("--seeds", type=int, default=4, help="images per label (seeds 0..N-1)")
    cond.add_argument("--max-labels", type=int, default=0, help="use only the first N labels (0: all)")
    cond.add_argument("--truncation", type=float, default=1.0)
    cond.add_argument("--threads", type=int, default=0)
    cond.add_argument("--json", action="store_true", help="print a JSON record")
    _add_generate_parser(sub)
    return ap


def read_text_file(path: str) -> str:
    """A UTF-8 text file, or a ValueError that says where it is not UTF-8."""
    data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not valid UTF-8 (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                         "convert it to UTF-8 first") from None


def _fail(message: str) -> int:
    print(f"aigc-studio: error: {message}", file=sys.stderr)
    return 2


def _load_generator(name: str | None, variant: str | None = None, device: str = "auto",
                    threads: int = 0) -> Any:
    from aigc_studio.runtime.registry import ModelRegistry
    from aigc_studio.runtime.text_generator import TextGenerator

    registry = ModelRegistry()
    package = registry.load(name or _default_text_model(registry))
    return TextGenerator(package, device=device, threads=threads, variant=variant)


def cmd_complete(args: argparse.Namespace) -> int:
    from aigc_studio.runtime.prompt import PromptError, check_prompt

    try:
        prompt = read_text_file("-") if args.prompt == "-" else args.prompt
        check_prompt(prompt)  # argv that is not UTF-8 arrives as lone surrogates
    except (ValueError, PromptError) as exc:
        return _fail(str(exc).replace("- is not", "standard input is not"))
    config = _sampling_config(args)
    gen = _load_generator(args.model, args.variant, args.device, args.threads)
    if args.json:
        results = gen.complete(prompt, config)
        stats = gen.last_stats
        print(json.dumps({
            "model": gen.name, "provider": gen.provider, "variant": gen.variant,
            "config": config.to_dict(),
            "completions": [{"text": r.text, "tokens": list(r.token_ids), "score": r.score} for r in results],
            "stats": {"prompt_tokens": stats.prompt_tokens, "new_tokens": stats.new_tokens,
                      "ttft_ms": round(stats.ttft_s * 1e3, 2), "total_ms": round(stats.total_s * 1e3, 2)},
        }, ensure_ascii=False, indent=2))
        return 0
    if config.num_return > 1 or config.is_beam:
        for i, r in enumerate(gen.complete(prompt, config), 1):
            print(f"[{i}] {prompt}{r.text}" if config.num_return > 1 else f"{prompt}{r.text}")
        return 0
    sys.stdout.write(prompt)
    for piece in gen.stream(prompt, config):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from aigc_studio.runtime.registry import ModelRegistry

    infos = ModelRegistry().list()
    if args.json:
        print(json.dumps([{"name": i.name, "kind": i.kind, "path": str(i.path), "size_bytes": i.size_bytes,
                           "licence": i.licence, "source": i.source, "error": i.error} for i in infos],
                         indent=2))
        return 0
    if not infos:
        print("no model packages installed")
        return 0
    rows = [("NAME", "KIND", "SIZE", "LICENCE", "SOURCE")]
    for i in infos:
        if i.error:
            rows.append((i.name, "broken", "-", "-", i.error))
        else:
            rows.append((i.name, i.kind, f"{i.size_bytes / 1e6:.1f} MB", i.licence, i.source))
    widths = [max(len(r[k]) for r in rows) for k in range(4)]
    for r in rows:
        print("  ".join(r[k].ljust(widths[k]) for k in range(4)) + "  " + r[4])
    return 0


class _Progress:
    """How far a long evaluation is, on standard error (standard output keeps only the results): a line
    such as ``condition: 120/400 images, 35 s`` when it starts, at most every ``every`` seconds while it
    runs and when it ends; on a terminal, one line rewritten in place instead."""

    def __init__(self, what: str, total: int | None, unit: str, *, every: float = 2.0) -> None:
        import time

        self._clock = time.monotonic
        self.what, self.total, self.unit, self.every = what, total, unit, every
        self.stream = sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self.started = self._last = self._clock()
        self._write(self.started)

    def advance(self, count: int = 1) -> None:
        """``count`` more units are done."""
        self.update(self.done + count)

    def update(self, done: int) -> None:
        """``done`` units are done."""
        self.done = done
        now = self._clock()
        if now - self._last >= (0.25 if self.tty else self.every):
            self._write(now)

    def close(self) -> None:
        """The last line (on a terminal, the line is ended)."""
        self._write(self._clock(), final=True)

    def _write(self, now: float, final: bool = False) -> None:
        self._last = now
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        line = f"{self.what}: {count} {self.unit}, {now - self.started:.0f} s"
        if self.tty:
            self.stream.write(f"\r{line}\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def cmd_eval(args: argparse.Namespace) -> int:
    if args.metric == "perplexity":
        text = read_text_file(args.file)
        gen = _load_generator(args.model, args.variant)
        ids = gen.tokenizer.encode(text)
        if args.max_tokens:
            ids = ids[: args.max_tokens]
        if len(ids) < 2:
            return _fail(f"{args.file}: too little text to score ({len(ids)} tokens)")
        progress = _Progress("perplexity", len(ids) - 1, "tokens scored")
        nll = gen.score(ids)
        n = len(ids) - 1
        progress.update(n)
        progress.close()
        words = max(1, len(gen.tokenizer.decode(ids).split()))  # of the scored text only
        print(f"model {gen.name} ({gen.variant}, {gen.provider}) on {args.file}: "
              f"{n} tokens, perplexity {math.exp(nll / n):.2f} per token, "
              f"{math.exp(nll / words):.2f} per word, {nll / n / math.log(2):.3f} bits/token")
        return 0
    if args.metric == "keystrokes":
        return _eval_keystrokes(args)
    if args.metric == "fid":
        return _eval_fid(args)
    if args.metric == "condition":
        return _eval_condition(args)
    if args.metric in ("bleu", "rouge"):
        return _eval_overlap(args)
    if args.metric == "repetition":
        return _eval_repetition(args)
    return _fail(f"unknown metric {args.metric}")


def _eval_keystrokes(args: argparse.Namespace) -> int:
    """Simulate a writer typing the file with the app's suggestions (core.completion.simulate_typing)."""
    import time

    from aigc_studio.core.completion import TOP_UP_WORDS, CompletionPolicy, is_settled, simulate_typing

    text = read_text_file(args.file)[: args.max_chars or None]
    config = _sampling_config(args)  # the app's decoding defaults (greedy, 32 tokens) unless overridden
    if not config.is_greedy and config.seed is None:
        config = config.with_(seed=0)  # deterministic for a given model and settings
    gen = _load_generator(args.model, args.variant, threads=args.threads)
    # The suggestion view-model's window: 1600 characters, less when the model's context is short.
    budget = gen.context_length - config.max_new_tokens - 8
    policy = CompletionPolicy(context_chars=max(256, min(1600, max(256, budget * 3))),
                              max_words=args.max_words)

    alternatives = max(1, args.alternatives)
    progress = _Progress("keystrokes", len(text), "characters typed")
    found = [0]  # where the last context began: the contexts move through the text

    def suggest(context: str) -> list[str]:
        start = text.find(context, found[0]) if context else -1
        if start >= 0:  # the context ends at the simulated cursor
            found[0] = start
            progress.update(max(progress.done, start + len(context)))
        if alternatives > 1 and (config.is_greedy or config.is_beam):
            shown = suggest_one(context) if config.is_greedy else []
            return shown + [c.text for c in gen.branches(
                context, config, alternatives, done=lambda raw: is_settled(raw, context, policy.max_words))]
        if config.is_beam or config.num_return > 1:
            return [c.text for c in gen.complete(context, config)]
        return suggest_one(context)

    words = policy.max_words + (0 if args.no_top_up else TOP_UP_WORDS)  # a top-up is cut one word longer

    def suggest_one(context: str) -> list[str]:
        raw, settled = "", False
        # Late binding on purpose: the stream's cancel check reads `settled` as the loop updates it.
        for piece in gen.stream(context, config, lambda: settled):  # noqa: B023  (stop once the cut is final)
            raw += piece
            settled = is_settled(raw, context, words)
        return [raw]

    started = time.perf_counter()
    report = simulate_typing(text, suggest, policy, top_ups=not args.no_top_up)
    seconds = time.perf_counter() - started
    progress.update(len(text))
    progress.close()
    record = {"model": gen.name, "variant": gen.variant, "provider": gen.provider, "file": args.file,
              "chars": report.chars, "keystrokes": report.keystrokes, "saved": report.keystrokes_saved,
              "savings": round(report.saved_fraction, 4), "accepted": report.accepted,
              "accepted_chars": report.accepted_chars, "shown": report.shown, "requests": report.requests,
              "top_ups": report.top_ups, "extended": report.extended,
              "seconds": round(seconds, 2), "config": config.to_dict(),
              "policy": {"context_chars": policy.context_chars, "max_words": policy.max_words},
              "alternatives": alternatives}
    if args.json:
        print(json.dumps(record, ensure_ascii=False, indent=2))
        return 0
    per = seconds / report.requests * 1e3 if report.requests else 0.0
    print(f"model {gen.name} ({gen.variant}, {gen.provider}) on {args.file}: {report.chars} chars typed with "
          f"{report.keystrokes} keystrokes: keystroke savings {report.saved_fraction:.1%} "
          f"({report.keystrokes_saved} chars not typed); {report.accepted} suggestions accepted "
          f"({report.accepted_chars} chars), {report.shown} shown of {report.requests} requests, "
          f"{report.extended} lengthened by {report.top_ups} top-ups; "
          f"{seconds:.1f} s ({per:.0f} ms per request)")
    return 0


def _eval_overlap(args: argparse.Namespace) -> int:
    """BLEU and ROUGE of continuations of held-out passages (core.text.passages) against the true text."""
    import time

    from aigc_studio.core.text import passages

    try:
        import sacrebleu
        from rouge_score import rouge_scorer
    except ImportError as exc:
        return _fail(f"eval {args.metric} needs sacrebleu and rouge-score ({exc.name} is missing): "
                     "pip install 'aigc-studio[eval]'")
    parts = passages(read_text_file(args.file), args.words, args.passages)
    config = _sampling_config(args)
    if args.max_new_tokens is None:  # room for the reference's words: about 1.3 tokens a word, and more
        config = config.with_(max_new_tokens=min(256, 2 * (args.words - args.words // 2) + 8))
    if not config.is_greedy and config.seed is None:
        config = config.with_(seed=0)  # deterministic for a given model and settings
    gen = _load_generator(args.model, args.variant, threads=args.threads)
    started = time.perf_counter()
    hyps, refs = [], []
    progress = _Progress(args.metric, len(parts), "passages")
    for p in parts:
        text = gen.complete(p.prompt, config)[0].text if config.is_beam else "".join(gen.stream(p.prompt, config))
        n = len(p.reference.split())
        hyps.append(" ".join(text.split()[:n]))
        refs.append(p.reference)
        progress.advance()
    progress.close()
    seconds = time.perf_counter() - started
    bleu = sacrebleu.corpus_bleu(hyps, [refs])
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    per = [scorer.score(r, h) for r, h in zip(refs, hyps)]
    rouge = {k: sum(s[k].fmeasure for s in per) / len(per) for k in ("rouge1", "rouge2", "rougeL")}
    record = {"model": gen.name, "variant": gen.variant, "file": args.file, "passages": len(parts),
              "words": args.words, "bleu": round(bleu.score, 2), "bleu_signature": str(bleu.format(signature=True)),
              **{k: round(v * 100, 2) for k, v in rouge.items()}, "seconds": round(seconds, 1),
              "config": config.to_dict(), "examples": [{"prompt": parts[i].prompt[-120:], "model": hyps[i],
                                                        "true": refs[i]} for i in range(min(2, len(parts)))]}
    if args.json:
        print(json.dumps(record, ensure_ascii=False, indent=2))
        return 0
    head = (f"model {gen.name} ({gen.variant}) on {args.file}: {len(parts)} passages of {args.words} words, "
            f"continuing the first {args.words // 2}")
    if args.metric == "bleu":
        print(f"{head}: BLEU {bleu.score:.2f} ({bleu.format(signature=True)}; {seconds:.1f} s)")
    else:
        print(f"{head}: ROUGE-1 {rouge['rouge1'] * 100:.2f}, ROUGE-2 {rouge['rouge2'] * 100:.2f}, "
              f"ROUGE-L {rouge['rougeL'] * 100:.2f} (F1, stemmed; {seconds:.1f} s)")
    return 0


def _eval_repetition(args: argparse.Namespace) -> int:
    """Repeated 4-grams and distinct-2 of long continuations of passages of a file (core.text)."""
    import time

    from aigc_studio.core.text import distinct_ngrams, passages, repeated_ngrams

    if args.tokens < 1:
        return _fail("--tokens must be at least 1")
    parts = passages(read_text_file(args.file), 2 * args.words, args.passages)
    config = _sampling_config(args).with_(max_new_tokens=args.tokens, num_return=1)
    if config.is_beam:
        return _fail("eval repetition streams one continuation; choose a greedy or sampling strategy")
    if not config.is_greedy and config.seed is None:
        config = config.with_(seed=0)  # deterministic for a given model and settings
    gen = _load_generator(args.model, args.variant, threads=args.threads)
    started = time.perf_counter()
    progress = _Progress("repetition", len(parts), "passages")
    texts = []
    for p in parts:
        texts.append("".join(gen.stream(p.prompt, config)))
        progress.advance()
    progress.close()
    seconds = time.perf_counter() - started
    shares = [repeated_ngrams(t, 4) for t in texts]
    record = {"model": gen.name, "variant": gen.variant, "file": args.file, "passages": len(parts),
              "prompt_words": args.words, "tokens": args.tokens,
              "repeated_4grams": round(sum(shares) / len(shares), 4), "worst_repeated_4grams": round(max(shares), 4),
              "distinct_2": round(distinct_ngrams(texts, 2), 4),
              "words_per_continuation": round(sum(len(t.split()) for t in texts) / len(texts), 1),
              "seconds": round(seconds, 1), "config": config.to_dict(),
              "continuations": [{"start_word": p.start, "text": t} for p, t in zip(parts, texts)]}
    if args.json:
        print(json.dumps(record, ensure_ascii=False, indent=2))
        return 0
    print(f"model {gen.name} ({gen.variant}) on {args.file}: {len(parts)} passages, continued for up to "
          f"{args.tokens} tokens ({config.describe()}): "
          f"repeated 4-grams {record['repeated_4grams'] * 100:.1f}% (worst passage "
          f"{record['worst_repeated_4grams'] * 100:.0f}%), distinct-2 {record['distinct_2'] * 100:.1f}%, "
          f"{record['words_per_continuation']:.0f} words each ({seconds:.1f} s)")
    return 0


def _load_image_eval(args: argparse.Namespace) -> tuple[Any, Any]:
    """(ImageGenerator, FeatureExtractor) of --model and --features, or ValueError."""
    from aigc_studio.runtime.features import FeatureExtractor
    from aigc_studio.runtime.image_generator import ImageGenerator
    from aigc_studio.runtime.registry import ModelRegistry

    registry = ModelRegistry()
    name = args.model or registry.default_name("image-gan")
    fname = args.features or registry.default_name("image-features")
    if name is None:
        raise ValueError("no image model is installed (see `aigc-studio models`)")
    if fname is None:
        raise ValueError("no image-features package is installed; build one with `python -m export.eval.fid`")
    gen = ImageGenerator(registry.load(name), device="cpu", threads=args.threads)
    fx = FeatureExtractor(registry.load(fname), threads=args.threads)
    if gen.img_size != fx.img_size:
        raise ValueError(f"model '{name}' makes {gen.img_size}px images; '{fname}' scores {fx.img_size}px images")
    return gen, fx


def _eval_condition(args: argparse.Namespace) -> int:
    """Top-1/top-5 class accuracy of images made for held-out emoji labels, with and without the text."""
    import numpy as np

    from aigc_studio.runtime.image_generator import Controls

    gen, fx = _load_image_eval(args)
    if not gen.conditional:
        return _fail(f"model '{gen.name}' is not conditioned on text")
    labels = fx.labels()[: args.max_labels or None]
    if not labels:
        return _fail(f"'{fx.name}' holds no labels to condition on (re-export it with python -m export.eval.fid)")
    if args.seeds < 1:
        return _fail("--seeds must be at least 1")
    seeds = list(range(args.seeds))
    scores = {}
    progress = _Progress("condition", 2 * len(labels) * len(seeds), "images")  # with and without text
    for mode in ("text", "none"):
        hits1 = hits5 = 0
        for label, k in labels:
            text = label.split(":")[0][:150] if mode == "text" else ""
            logits = fx.logits(gen.images(seeds, Controls(psi=args.truncation, text=text)))
            top5 = np.argsort(-logits, axis=1)[:, :5]
            hits1 += int((top5[:, 0] == k).sum())
            hits5 += int((top5 == k).any(axis=1).sum())
            progress.advance(len(seeds))
        n = len(labels) * len(seeds)
        scores[mode] = {"top1": hits1 / n, "top5": hits5 / n}
    progress.close()
    record = {"model": gen.name, "features": fx.name, "labels": len(labels), "seeds": len(seeds),
              "classes": len(fx.classes), "psi": args.truncation, "with_text": scores["text"],
              "without_text": scores["none"]}
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    t, u = scores["text"], scores["none"]
    print(f"model {gen.name}: {len(labels)} held-out emoji labels x {len(seeds)} seeds, {len(fx.classes)} classes "
          f"of '{fx.name}': class accuracy with the label as text top-1 {t['top1']:.1%}, top-5 {t['top5']:.1%}; "
          f"the same seeds without text top-1 {u['top1']:.1%}, top-5 {u['top5']:.1%}")
    return 0


def _eval_fid(args: argparse.Namespace) -> int:
    """Domain FID/KID of generated images against the real reference images of a feature package."""
    import time

    import numpy as np

    from aigc_studio.runtime.image_generator import Controls

    gen, fx = _load_image_eval(args)
    name, fname = gen.name, fx.name
    n = args.samples or len(fx.heldout)
    if n < 2:
        return _fail("--samples must be at least 2")
    controls = Controls(psi=args.truncation, text=args.text) if gen.is_style_based else Controls()
    if not gen.is_style_based and (args.truncation != 1.0 or args.text):
        return _fail(f"model '{name}' is a {gen.architecture} model: no truncation or text condition")
    started = time.perf_counter()
    progress = _Progress("fid", n, "images")
    features = []
    for i in range(0, n, 64):
        features.append(fx.features(gen.images(range(args.seed + i, args.seed + min(n, i + 64)), controls)))
        progress.advance(min(n, i + 64) - i)
    progress.close()
    scores = fx.scores(np.concatenate(features))
    seconds = time.perf_counter() - started
    floor = fx.floor
    record = {"model": name, "features": fname, **scores.as_dict(), "psi": args.truncation, "text": args.text,
              "first_seed": args.seed, "floor": floor, "seconds": round(seconds, 1)}
    if args.json:
        print(json.dumps(record, indent=2, ensure_ascii=False))
        return 0
    print(f"model {name}: domain FID {scores.fid:.2f}, domain KID {scores.kid:.4f} ± {scores.kid_std:.4f} "
          f"({scores.samples} generated images, seeds {args.seed}..{args.seed + n - 1}, psi {args.truncation}"
          f"{', text ' + repr(args.text) if args.text else ''}; against {scores.reference_samples} real images; "
          f"features '{fname}'; {seconds:.1f} s)")
    if floor:
        print(f"floor, held-out real images: domain FID {floor['fid']:.2f}, domain KID {floor['kid']:.4f} "
              f"± {floor['kid_std']:.4f} ({floor['samples']} images)")
    return 0


# ----------------------------------------------------------------------------- generate (image models)


def _add_generate_parser(sub: Any) -> None:
    from aigc_studio.core.latents import MAX_FRAMES, SEED_MAX
    from aigc_studio.runtime.image_generator import GRID_MAX

    g = sub.add_parser("generate", help="generate images with an image model (PNG with its record, WebP, GIF "
                       "or JPEG)")
    g.add_argument("--model", help="image model package name (default: the first installed)")
    g.add_argument("--seed", type=int, default=0, help=f"0 .. {SEED_MAX} (default 0)")
    g.add_argument("--truncation", type=float, default=1.0, help="ψ: 1 = none, 0 = the average image")
    g.add_argument("--mix-seed", type=int)
    g.add_argument("--mix-layers", help="coarse, middle, fine or A:B")
    g.add_argument("--direction", action="append", default=[], metavar="K=V",
                   help="offset along principal direction K, in standard deviations (repeatable)")
    g.add_argument("--text", default="", help="condition text, e.g. 'red heart'")
    g.add_argument("--grid", help=f"RxC: a grid of consecutive seeds from --seed, as one image (1 .. {GRID_MAX} "
                   "rows and columns)")
    g.add_argument("--interpolate", nargs=2, type=int, metavar=("S1", "S2"),
                   help="frames from S1 to S2, as an animated GIF or WebP")
    g.add_argument("--frames", type=int, default=16, help=f"frames of --interpolate: 2 .. {MAX_FRAMES} (default 16)")
    g.add_argument("--space", choices=("w", "z"), default="w", help="interpolate linearly in w or spherically in z")
    g.add_argument("--from-png", help="regenerate from the record in this PNG, and compare the pixels with it")
    g.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    g.add_argument("--threads", type=int, default=0)
    g.add_argument("-o", "--out", required=True,
                   help="output file; its extension chooses the format: " + _FORMATS_TEXT + ". Only PNG keeps the "
                   "generation record (for --from-png); JPEG has no transparency, so the image is composited "
                   f"onto white; GIF has none but on/off, so alpha >= {GIF_ALPHA_THRESHOLD} is kept, composited "
                   "onto white, and the rest is transparent")


def cmd_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aigc_studio.core import latents as L
    from aigc_studio.core.png_record import read_png_file, read_record
    from aigc_studio.runtime.image_generator import Controls, ImageGenerator
    from aigc_studio.runtime.registry import ModelRegistry

    # Everything that can be checked without a model is checked before one is loaded.
    modes = [flag for flag, on in (("--from-png", args.from_png), ("--interpolate", args.interpolate),
                                   ("--grid", args.grid)) if on]
    if len(modes) > 1:
        return _fail(f"{' and '.join(modes)} cannot be combined: choose one")
    out = Path(args.out)
    fmt = _output_format(out, animated=bool(args.interpolate))
    if args.interpolate:
        L.check_frames(args.frames)
    grid = _parse_grid(args.grid) if args.grid else None
    directions = _parse_directions(args.direction)
    source = read_png_file(args.from_png) if args.from_png else None
    record = read_record(source) if source is not None else None

    registry = ModelRegistry()
    name = record.model if record else args.model or registry.default_name("image-gan")
    if name is None:
        return _fail("no image model is installed (see `aigc-studio models`)")
    gen = ImageGenerator(registry.load(name), device=args.device, threads=args.threads)
    if record is not None and source is not None:
        return _regenerate(gen, record, source, args.from_png, out, fmt)
    controls = Controls(psi=args.truncation, mix_seed=args.mix_seed, mix_layers=args.mix_layers,
                        directions=directions or None, text=args.text)
    if args.interpolate:
        frames = gen.interpolate(*args.interpolate, args.frames, space=args.space, controls=controls)
        _save_animation(out, fmt, frames)
        print(f"{out}: {len(frames)} frames from seed {args.interpolate[0]} to {args.interpolate[1]}")
        return 0
    if grid:
        img, rec = gen.grid(args.seed, grid[0], grid[1], controls)
    else:
        img, rec = gen.generate(args.seed, controls)
    _save_image(gen, out, fmt, img, rec)
    print(f"{out}: " + " | ".join(line for line in rec.parameters_line().splitlines() if line))
    return 0


# Output formats of `generate`, by extension (Pillow's format names); animations only as GIF or WebP
# (APNG is left out on purpose: few viewers play it, and a PNG here means "an image with its record").
_IMAGE_FORMATS = {".png": "PNG", ".webp": "WEBP", ".gif": "GIF", ".jpg": "JPEG", ".jpeg": "JPEG"}
_ANIMATION_FORMATS = (".gif", ".webp")
_FORMATS_TEXT = ".png, .webp, .gif, .jpg/.jpeg (an --interpolate animation: .gif or .webp)"
GIF_ALPHA_THRESHOLD = 128        # GIF transparency is on or off: alpha >= this is opaque, the rest transparent
GIF_MATTE = (255, 255, 255)      # kept semi-transparent pixels (and JPEG) are composited onto white
GIF_TRANSPARENT_INDEX = 255      # the palette entry of transparent pixels; 0 .. 254 hold the colours


def _output_format(out: Any, animated: bool) -> str:
    """Pillow's format name for the output path `out` (by its extension), or a ValueError that lists the
    supported extensions when it is unknown or cannot hold an animation."""
    ext = out.suffix.lower()
    if ext not in _IMAGE_FORMATS:
        raise ValueError(f"-o {out}: {'unknown image type ' + repr(ext) if ext else 'no file extension'}; "
                         f"the extension chooses the format: {_FORMATS_TEXT}")
    if animated and ext not in _ANIMATION_FORMATS:
        raise ValueError(f"-o {out}: --interpolate makes an animation, which {ext} cannot hold here; use .gif or "
                         ".webp")
    return _IMAGE_FORMATS[ext]


def _parse_grid(text: str) -> tuple[int, int]:
    """'RxC' as (rows, columns); ValueError for anything else (the sizes are checked by the generator)."""
    import re

    m = re.fullmatch(r"\s*(\d{1,9})\s*[xX]\s*(\d{1,9})\s*", text, re.ASCII)
    if not m:
        raise ValueError(f"--grid {text!r}: use RxC, e.g. 4x4")
    return int(m.group(1)), int(m.group(2))


def _parse_directions(items: Sequence[str]) -> dict[str, str]:
    """--direction K=V items as {K: V} (checked against the model later); ValueError for a malformed or
    repeated K."""
    directions: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--direction {item!r}: use K=V, e.g. 0=1.5")
        if key.strip() in directions:
            raise ValueError(f"--direction {key.strip()} is given twice; give each direction once")
        directions[key.strip()] = value.strip()
    return directions


def _regenerate(gen: Any, record: Any, source: bytes, source_name: str, out: Any, fmt: str) -> int:
    """--from-png: say first when the installed model is another build than the record's, make the image
    again, write it with its true record, and judge "bit-exact" by the pixels of the original file."""
    import io

    from PIL import Image

    if record.model_sha256 != gen.model_sha256:
        print(f"aigc-studio: note: this image was made with model {record.model} sha256 "
              f"{record.model_sha256[:16] or '(none recorded)'}…, the installed {gen.name} is "
              f"{gen.model_sha256[:16]}…: the pixels will differ", file=sys.stderr)
    original = None
    try:
        with Image.open(io.BytesIO(source)) as im:
            rows, cols = record.grid or (1, 1)
            if im.size == (cols * gen.img_size, rows * gen.img_size):  # else no need to decode: they differ
                import numpy as np

                original = np.asarray(im.convert("RGBA"))
    except OSError as exc:
        raise ValueError(f"{source_name}: its pixels cannot be read ({exc}); the file is damaged") from None
    result = gen.regenerate(record, original)
    _save_image(gen, out, fmt, result.image, result.record)
    if result.original_edited:
        print(f"aigc-studio: note: the pixels of {source_name} were changed after its record was written",
              file=sys.stderr)
    if result.same_pixels:
        print(f"{out}: regenerated bit-exact (the same pixels as {source_name})")
        return 0
    why = "the model differs" if result.model_changed else "another runtime or provider, or edited pixels?"
    print(f"{out}: regenerated with DIFFERENT pixels from {source_name} ({why})")
    return 1


def _save_image(gen: Any, out: Any, fmt: str, img: Any, record: Any) -> None:
    """One image in the format `fmt`; the generation record goes into PNG only (a note says so otherwise)."""
    from PIL import Image

    if fmt == "PNG":
        out.write_bytes(gen.png(img, record))
        return
    if fmt == "GIF":
        _save_animation(out, fmt, [img])
    elif fmt == "JPEG":
        Image.fromarray(_composite(img, GIF_MATTE), "RGB").save(out, format="JPEG", quality=95)
        print("aigc-studio: note: JPEG has no transparency: the image is composited onto white", file=sys.stderr)
    else:
        Image.fromarray(img, "RGBA").save(out, format=fmt, lossless=True)
    print(f"aigc-studio: note: {out.suffix} keeps no generation record (only .png does, for --from-png)",
          file=sys.stderr)


def _save_animation(out: Any, fmt: str, frames: Sequence[Any]) -> None:
    """Frames (H, W, 4) uint8 RGBA as an animated GIF (see `_gif_frames`) or lossless WebP (full alpha)."""
    from PIL import Image

    if fmt == "GIF":
        pics = _gif_frames(frames)
        pics[0].save(out, format="GIF", save_all=True, append_images=pics[1:], duration=80, loop=0, disposal=2,
                     transparency=GIF_TRANSPARENT_INDEX, optimize=False)
    else:
        pics = [Image.fromarray(f, "RGBA") for f in frames]
        pics[0].save(out, format=fmt, save_all=True, append_images=pics[1:], duration=80, loop=0, lossless=True)


def _composite(img: Any, matte: tuple[int, int, int]) -> Any:
    """(..., 4) uint8 straight RGBA composited onto the colour `matte`: (..., 3) uint8 RGB."""
    import numpy as np

    alpha = img[..., 3:].astype(np.float32) / 255.0
    rgb = img[..., :3] * alpha + np.asarray(matte, np.float32) * (1.0 - alpha)
    return np.rint(rgb).astype(np.uint8)


def _gif_frames(frames: Sequence[Any]) -> list[Any]:
    """RGBA frames as palette images for GIF, which has 256 colours and on/off transparency.

    Pixels with alpha >= GIF_ALPHA_THRESHOLD are opaque, their colour composited onto GIF_MATTE (a
    nearly transparent pixel's colour is noise, and must not show); the others are transparent, with
    the dedicated palette entry GIF_TRANSPARENT_INDEX. One palette of 255 colours serves every frame,
    so colours do not flicker from frame to frame."""
    import numpy as np
    from PIL import Image

    rgba = np.stack([np.asarray(f, np.uint8) for f in frames])            # (N, H, W, 4)
    n, h, w, _ = rgba.shape
    opaque = rgba[..., 3] >= GIF_ALPHA_THRESHOLD                            # (N, H, W)
    rgb = _composite(rgba, GIF_MATTE)
    rgb[~opaque] = GIF_MATTE
    q = Image.fromarray(rgb.reshape(n * h, w, 3), "RGB").quantize(
        colors=GIF_TRANSPARENT_INDEX, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    index = np.array(q, dtype=np.uint8).reshape(n, h, w)
    index[~opaque] = GIF_TRANSPARENT_INDEX
    palette = list(q.getpalette() or [])[:3 * GIF_TRANSPARENT_INDEX]
    palette += [0] * (3 * GIF_TRANSPARENT_INDEX - len(palette)) + list(GIF_MATTE)
    pics = []
    for frame in index:
        pic = Image.fromarray(frame, "P")
        pic.putpalette(palette)
        pic.info["transparency"] = GIF_TRANSPARENT_INDEX
        pics.append(pic)
    return pics


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        from aigc_studio.app import main as app_main

        return app_main(argv)
    args = build_parser().parse_args(argv)
    from aigc_studio.runtime.package import PackageError

    try:
        return {"complete": cmd_complete, "models": cmd_models, "eval": cmd_eval,
                "generate": cmd_generate}[args.command](args)
    except (PackageError, ValueError, OSError, UnicodeDecodeError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
