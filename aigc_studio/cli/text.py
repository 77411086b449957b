"""Text-model subcommands: `complete`, `models`, and the text evaluations (perplexity, keystrokes,
bleu and rouge, repetition)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import TYPE_CHECKING, Any

from .common import _add_sampling_options, _fail, _sampling_config, read_text_file
from .progress import _Progress

if TYPE_CHECKING:
    from aigc_studio.core.completion import CompletionPolicy, KeystrokeReport
    from aigc_studio.core.sampling import SamplingConfig

DEFAULT_TEXT_MODEL = "writer-tiny"


def _default_text_model(registry: Any) -> str:
    return registry.default_name("text-lm") or DEFAULT_TEXT_MODEL


def _add_complete_parser(sub: Any) -> None:
    c = sub.add_parser("complete", help="continue a prompt with a text model")
    c.add_argument("prompt", help="the prompt, or '-' to read it from standard input")
    c.add_argument("--model", help="model package name (default: the default writing model)")
    c.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    c.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = its default)")
    c.add_argument("--variant", help="graph variant of the package (e.g. fp32, int8)")
    c.add_argument("--json", action="store_true", help="print a JSON record instead of the text")
    _add_sampling_options(c)


def _add_models_parser(sub: Any) -> None:
    sub.add_parser("models", help="list installed model packages").add_argument(
        "--json", action="store_true")


def _text_eval_parser(esub: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A metric of `eval` with the options every text evaluation takes."""
    p = esub.add_parser(name, help=help)
    p.add_argument("file")
    p.add_argument("--model")
    p.add_argument("--variant")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = its default)")
    p.add_argument("--json", action="store_true", help="print a JSON record")
    _add_sampling_options(p)
    return p


def _add_text_eval_parsers(esub: Any) -> None:
    ppl = esub.add_parser("perplexity", help="perplexity of a text model on a UTF-8 text file")
    ppl.add_argument("file")
    ppl.add_argument("--model")
    ppl.add_argument("--variant")
    ppl.add_argument("--max-tokens", type=int, default=0, help="score only the first N tokens")
    ks = _text_eval_parser(esub, "keystrokes", "keystrokes inline suggestions save a writer typing a UTF-8 text "
                           "file (the app's completion policy and keys; deterministic)")
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
        ov = _text_eval_parser(esub, metric, f"{what} of a text model continuing the first half of passages of a "
                               "UTF-8 text file, against their true second half (greedy by default; --json gives "
                               "both metrics)")
        ov.add_argument("--passages", type=int, default=50, help="passages spread evenly over the file")
        ov.add_argument("--words", type=int, default=64, help="words per passage: half prompt, half reference")
    rep = _text_eval_parser(esub, "repetition", "how much a text model repeats itself: it continues passages of "
                            "a UTF-8 text file for --tokens tokens (greedy by default, --preset Balanced as "
                            "Continue) and reports the share of repeated word 4-grams and distinct-2")
    rep.add_argument("--passages", type=int, default=20, help="passages spread evenly over the file")
    rep.add_argument("--words", type=int, default=120, help="words of each passage given as the prompt")
    rep.add_argument("--tokens", type=int, default=200, help="tokens of each continuation")


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


def _eval_perplexity(args: argparse.Namespace) -> int:
    """Perplexity of a text model on a file: per token, per word, and in bits per token."""
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
    return _report_keystrokes(args, gen, config, policy, report, seconds, alternatives)


def _report_keystrokes(args: argparse.Namespace, gen: Any, config: SamplingConfig, policy: CompletionPolicy,
                       report: KeystrokeReport, seconds: float, alternatives: int) -> int:
    """The result of `eval keystrokes`: a JSON record with --json, else one line."""
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
