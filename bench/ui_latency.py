"""Keystroke-to-ghost-text latency of the writing editor, with and without KV-cache reuse.

    python bench/ui_latency.py                      # the first installed text model (~1 min)
    python bench/ui_latency.py --model writer-tiny --chars 300 --json out.json
    python -m bench.ui_latency --model /path/to/package --quick

The real application pieces run in one process (offscreen Qt): the writing editor, its view-model, the
completion service with its worker thread, and the runtime's TextGenerator. A document of about 1,000
tokens is loaded, the cursor is put at its end, and a writer types a continuation through real key
events at 8 characters a second on average (letters 100 ms apart, a 300 ms pause after each word, as a
writer's rhythm has). Suggestions follow the app's own settings (its pause before asking, short
suggestions); --debounce sets another pause.

For each keystroke after which a suggestion appears before the next keystroke, the latency is the time
from the keystroke to the first painted ghost word; the table gives its median and 95th percentile, how
often a suggestion was in time, its mean length in words, the longest gap of a 10 ms timer in the UI
thread (a stall), and the prompt tokens of the model calls and how many of them came from the KV cache.
The same run is repeated with the cache dropped before every call ("no reuse"), which is what a
keystroke would cost if the whole context window were prefilled again.

"First keystroke": the document is loaded with the cursor at its end, the writer rests 2 s and types
one letter, and waits for its suggestion (at most 5 s) before going on. The writing pane primes the
KV cache where the cursor comes to rest (`SuggestionViewModel.prime`); a third run switches that off,
which is what every first keystroke at a new place cost before.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.text_decode import cpu_flags, vector_isa  # noqa: E402

DOCUMENT = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must "
    "be in want of a wife. However little known the feelings or views of such a man may be on his "
    "first entering a neighbourhood, this truth is so well fixed in the minds of the surrounding "
    "families, that he is considered the rightful property of some one or other of their daughters.\n\n"
    "\"My dear Mr. Bennet,\" said his lady to him one day, \"have you heard that Netherfield Park is "
    "let at last?\"\n\nMr. Bennet replied that he had not.\n\n\"But it is,\" returned she; \"for Mrs. "
    "Long has just been here, and she told me all about it.\"\n\nMr. Bennet made no answer.\n\n"
)
CONTINUATION = (
    "She was a woman of mean understanding, little information, and uncertain temper. When she was "
    "discontented, she fancied herself nervous. The business of her life was to get her daughters "
    "married; its solace was visiting and news. Mr. Bennet was among the earliest of those who waited "
    "on Mr. Bingley. He had always intended to visit him, though to the last always assuring his wife "
    "that he should not go."
)
LETTER_MS = 100
WORD_PAUSE_MS = 300
REST_MS = 2000  # the document is loaded with the cursor at its end; the writer starts after this


@dataclass
class Result:
    reuse: bool
    prime: bool = True  # the writing pane primes the KV cache where the cursor comes to rest
    first_ms: float = float("nan")  # the first keystroke at the end of the freshly loaded document
    keystrokes: int = 0
    waits: int = 0  # keystrokes after which no suggestion was visible (typing through keeps one)
    latencies_ms: list[float] = field(default_factory=list)
    words: list[int] = field(default_factory=list)
    longest_stall_ms: float = 0.0
    prompt_tokens: list[int] = field(default_factory=list)
    reused_tokens: list[int] = field(default_factory=list)
    document_tokens: int = 0
    document: str = field(default="", repr=False)


class _NoReuse:
    """A generator wrapper that drops the KV cache before every call."""

    def __init__(self, generator: Any) -> None:
        self._generator = generator

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generator, name)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        self._generator.reset_cache()
        return self._generator.stream(*args, **kwargs)

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        self._generator.reset_cache()
        return self._generator.complete(*args, **kwargs)


class _Recording:
    """Records each call's GenerationStats (prompt and reused tokens)."""

    def __init__(self, generator: Any, result: Result) -> None:
        self._generator = generator
        self._result = result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generator, name)

    def _note(self) -> None:
        stats = self._generator.last_stats
        self._result.prompt_tokens.append(int(stats.prompt_tokens))
        self._result.reused_tokens.append(int(stats.reused_tokens))

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        try:
            yield from self._generator.stream(*args, **kwargs)
        finally:
            self._note()

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._generator.complete(*args, **kwargs)
        finally:
            self._note()


def _document(tokenizer: Any, target: int = 1000) -> tuple[str, int]:
    text = DOCUMENT
    while len(tokenizer.encode(text)) < target:
        text += DOCUMENT
    return text, len(tokenizer.encode(text))


def run(model: str, reuse: bool, chars: int, threads: int, debounce_ms: int, prime: bool = True) -> Result:
    from PySide6.QtCore import QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from aigc_studio.gui.writing_editor import WritingEditorView
    from aigc_studio.services.completion_service import CompletionService
    from aigc_studio.services.model_host import ModelHost
    from aigc_studio.services.models import ModelChoice, ModelState, RuntimeBackend
    from aigc_studio.services.settings import Settings
    from aigc_studio.viewmodels.suggestion import SuggestionViewModel

    result = Result(reuse=reuse, prime=prime)
    folder = Path(model)
    backend = RuntimeBackend([folder.parent]) if folder.is_dir() else RuntimeBackend()
    name = folder.name if folder.is_dir() else model

    class Backend:
        def list_models(self) -> Any:
            return backend.list_models()

        def gpu_status(self) -> tuple[bool, str]:
            return backend.gpu_status()

        def create(self, choice: ModelChoice) -> Any:
            generator = backend.create(choice)
            result.document, result.document_tokens = _document(generator.tokenizer)
            return _Recording(generator if reuse else _NoReuse(generator), result)

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as temp:
        settings = Settings(Path(temp) / "settings.ini")
        settings.set_value("completion/debounce_ms", debounce_ms)
        host = ModelHost(Backend())  # type: ignore[arg-type]
        service = CompletionService(host, debounce_ms=debounce_ms)
        suggestion = SuggestionViewModel(service, host, settings)
        if not prime:
            suggestion.prime = lambda: None  # type: ignore[method-assign]  # the pane as it was before
        editor = WritingEditorView(suggestion)
        editor.resize(900, 700)
        editor.show()
        host.start()
        loaded: list[ModelState] = []
        host.status_changed.connect(lambda s: loaded.append(s.state))
        host.load(ModelChoice(name, "cpu", threads))
        while not loaded or loaded[-1] is ModelState.LOADING:
            app.processEvents()
            time.sleep(0.01)
        if loaded[-1] is not ModelState.READY:
            service.shutdown()
            host.shutdown()
            raise SystemExit(f"model {model!r} did not load: {host.status.error}")
        editor.set_text(result.document)
        editor.moveCursor(editor.textCursor().MoveOperation.End)
        typed = CONTINUATION[:chars]
        state: dict[str, Any] = {"i": 0, "key_at": 0.0, "measured": True, "done": False,
                                 "ticks": [], "in_time": 0}

        def on_changed() -> None:
            if (not state["measured"] and suggestion.visible
                    and suggestion.anchor == editor.textCursor().position()
                    and suggestion.ghost.strip()):
                state["measured"] = True
                latency = (time.perf_counter() - state["key_at"]) * 1000
                state["shown"] = True
                if state.pop("first_wait", False):  # the writer waited for this one
                    result.first_ms = latency
                    QTimer.singleShot(LETTER_MS, type_next)
                else:
                    result.latencies_ms.append(latency)

        def first_timeout() -> None:
            if state.pop("first_wait", False):
                type_next()

        suggestion.changed.connect(on_changed)

        def type_next() -> None:
            if state["i"] >= len(typed):
                state["done"] = True
                return
            if state.pop("shown", False) and suggestion.visible:
                # The suggestion as the writer saw it when typing the next key (streaming finished).
                result.words.append(len(suggestion.ghost.split()))
            char = typed[state["i"]]
            state["i"] += 1
            state["key_at"] = time.perf_counter()
            state["measured"] = True  # no measurement while the key is handled
            QTest.keyClicks(editor, char)
            # Typing through a suggestion keeps its rest visible: nothing new to wait for. Otherwise
            # (no suggestion, or the key did not match it) the wait for a new one starts at the key.
            state["measured"] = suggestion.visible and bool(suggestion.ghost.strip())
            result.waits += not state["measured"]
            result.keystrokes += 1
            if state["i"] == 1 and not state["measured"]:
                # The first key at a new place: the writer waits for its suggestion (at most 5 s).
                state["first_wait"] = True
                QTimer.singleShot(5000, first_timeout)
                return
            pause = WORD_PAUSE_MS if char == " " else LETTER_MS
            QTimer.singleShot(pause, type_next)

        ticker = QTimer()
        ticker.setInterval(10)
        ticker.timeout.connect(lambda: state["ticks"].append(time.perf_counter()))
        ticker.start()
        QTimer.singleShot(REST_MS, type_next)
        while not state["done"]:
            app.processEvents()
            time.sleep(0.001)
        ticker.stop()
        ticks = state["ticks"]
        result.longest_stall_ms = max((b - a for a, b in zip(ticks, ticks[1:])), default=0) * 1000
        service.shutdown()
        host.shutdown()
        editor.close()
    return result


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _mode(r: Result) -> str:
    if not r.reuse:
        return "no (full prefill)"
    return "yes, primed where the cursor rests" if r.prime else "yes, without priming"


def table(results: list[Result], model: str, debounce_ms: int) -> str:
    rows = ["| KV-cache reuse | first keystroke (ms) | keystrokes | of them needing a new suggestion "
            "| suggestions in time | latency p50 (ms) | latency p95 (ms) | after the pause p50 (ms) "
            "| words per suggestion | longest UI stall (ms) | prompt tokens | reused per call |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        reused = statistics.mean(r.reused_tokens) if r.reused_tokens else 0
        prompt = statistics.mean(r.prompt_tokens) if r.prompt_tokens else 0
        rows.append(
            f"| {_mode(r)} | {r.first_ms:.0f} | {r.keystrokes} | {r.waits} | {len(r.latencies_ms)} "
            f"| {statistics.median(r.latencies_ms) if r.latencies_ms else float('nan'):.0f} "
            f"| {_pct(r.latencies_ms, 0.95):.0f} "
            f"| {statistics.median(r.latencies_ms) - debounce_ms if r.latencies_ms else float('nan'):.0f} "
            f"| {statistics.mean(r.words) if r.words else 0:.1f} | {r.longest_stall_ms:.0f} "
            f"| {prompt:.0f} | {reused:.0f} |")
    head = (f"UI latency, model {model}, document of ~{results[0].document_tokens} tokens, typing at "
            f"~8 characters/s; latency from the keystroke to the first ghost word, including the "
            f"{debounce_ms} ms pause (\"after the pause\": the model's part, the keystroke's request "
            f"to the first ghost word) ({platform.machine()} {vector_isa(cpu_flags())}, {os.cpu_count()} CPUs, "
            f"{time.strftime('%Y-%m-%d')})")
    return head + "\n\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="", help="a package name or folder (default: first "
                                                     "installed text model)")
    parser.add_argument("--chars", type=int, default=len(CONTINUATION),
                        help="how many characters to type per run")
    parser.add_argument("--quick", action="store_true", help="type 120 characters")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--debounce", type=int, default=None,
                        help="the pause before asking (ms; default: the app's, DEBOUNCE_MS)")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args(argv)
    chars = 120 if args.quick else args.chars
    if args.debounce is None:
        from aigc_studio.services.completion_service import DEBOUNCE_MS

        args.debounce = DEBOUNCE_MS
    results = [run(args.model, reuse, chars, args.threads, args.debounce, prime)
               for reuse, prime in ((True, True), (True, False), (False, False))]
    print(table(results, args.model or "first installed", args.debounce))
    if args.json:
        rows = [{k: v for k, v in asdict(r).items() if k != "document"} for r in results]
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
