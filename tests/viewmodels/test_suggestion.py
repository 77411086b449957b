"""The suggestion view-model, driven through a string instead of an editor."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QCoreApplication

from aigc_studio.services.completion_service import CompletionService
from aigc_studio.services.model_host import ModelHost
from aigc_studio.services.settings import Settings
from aigc_studio.viewmodels.suggestion import StringSource, SuggestionViewModel
from tests.services.fakes import FakeGenerator, Recorder


@pytest.fixture
def source() -> StringSource:
    return StringSource("")


@pytest.fixture
def model(service: CompletionService, host: ModelHost, settings: Settings,
          source: StringSource) -> Iterator[SuggestionViewModel]:
    model = SuggestionViewModel(service, host, settings)
    model.attach(source)
    yield model
    model.dismiss()


def insert(model: SuggestionViewModel, source: StringSource, text: str) -> None:
    """What the editor reports when ``text`` is typed (or pasted) at the cursor."""
    position = source.cursor
    source.text = source.text[:position] + text + source.text[position:]
    source.cursor += len(text)
    model.on_contents_changed(position, 0, len(text))
    model.on_cursor_moved(source.cursor)


def type_keys(model: SuggestionViewModel, source: StringSource, text: str) -> None:
    for char in text:
        insert(model, source, char)


def wait_for_ghost(qtbot, model: SuggestionViewModel, ghost: str | None = None) -> None:
    if ghost is None:
        qtbot.waitUntil(lambda: model.visible and not model.waiting, timeout=5000)
    else:
        qtbot.waitUntil(lambda: model.ghost == ghost and not model.waiting, timeout=5000)


def test_runs_under_a_bare_core_application(qapp) -> None:
    assert type(QCoreApplication.instance()) is QCoreApplication or "PySide6.QtWidgets" in sys.modules


@pytest.mark.skipif(os.environ.get("AIGC_INNER") == "1", reason="already the inner run")
def test_view_models_need_no_widgets() -> None:
    """Run these tests again in a process of their own: QCoreApplication, no QtGui or QtWidgets."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, AIGC_INNER="1", QT_QPA_PLATFORM="offscreen")
    imports = ("import sys\n"
               "import aigc_studio.viewmodels.suggestion, aigc_studio.viewmodels.model\n"
               "import aigc_studio.viewmodels.document\n"
               "loaded = [m for m in ('PySide6.QtGui', 'PySide6.QtWidgets') if m in sys.modules]\n"
               "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", imports], env=env, capture_output=True,
                            text=True, timeout=60, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    tests = ("import sys, pytest\n"
             "code = pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/viewmodels'])\n"
             "from PySide6.QtCore import QCoreApplication\n"
             "assert type(QCoreApplication.instance()) is QCoreApplication\n"
             "sys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", tests], env=env, capture_output=True,
                            text=True, timeout=300, cwd=root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_typing_asks_once_after_the_pause(qtbot, model, source, service, generator) -> None:
    sent = Recorder()
    service.request_sent.connect(sent)
    type_keys(model, source, "The")
    wait_for_ghost(qtbot, model, " quick brown fox jumps")
    assert len(sent.items) == 1
    assert [call.prompt for call in generator.calls] == ["The"]
    assert model.anchor == 3


def test_typing_through_keeps_the_rest(qtbot, model, source, service) -> None:
    type_keys(model, source, "The")
    wait_for_ghost(qtbot, model)
    sent = Recorder()
    service.request_sent.connect(sent)
    type_keys(model, source, " qu")
    assert model.ghost == "ick brown fox jumps"
    assert model.anchor == 6
    insert(model, source, "ick brown")  # a paste that matches counts too
    assert model.ghost == " fox jumps"
    assert sent.items == []  # no new request while typing through


def test_typing_down_to_the_last_word_tops_up_the_suggestion(qtbot, model, source, service,
                                                             generator) -> None:
    """Typed through to its last word, the suggestion asks again in the background; an answer that
    goes on from the visible rest lengthens it, one that does not is not shown."""
    generator.script = lambda prompt: (" jumps over the lazy dog" if prompt.endswith("fox")
                                       else " quick brown fox jumps")
    type_keys(model, source, "The")
    wait_for_ghost(qtbot, model, " quick brown fox jumps")
    sent = Recorder()
    service.request_sent.connect(sent)
    type_keys(model, source, " quick brown")
    assert model.ghost == " fox jumps" and not model.waiting  # two words left: nothing asked
    type_keys(model, source, " fox")
    assert model.ghost == " jumps"  # shown at once, lengthened when the answer comes
    wait_for_ghost(qtbot, model, " jumps over the lazy dog")  # the word shown and four more
    assert model.anchor == len("The quick brown fox") and len(sent.items) == 1
    assert generator.calls[-1].prompt == "The quick brown fox"

    generator.script = lambda prompt: " leaps high"  # now the model would say something else
    type_keys(model, source, " j")
    type_keys(model, source, "umps over the lazy")
    assert model.ghost == " dog"
    qtbot.waitUntil(lambda: len(sent.items) == 2 and not model.waiting, timeout=5000)
    assert model.ghost == " dog" and model.visible


def test_other_keystroke_dismisses_and_asks_again(qtbot, model, source, service) -> None:
    type_keys(model, source, "The")
    wait_for_ghost(qtbot, model)
    sent = Recorder()
    service.request_sent.connect(sent)
    with qtbot.waitSignal(model.changed):
        type_keys(model, source, " s")
    assert not model.visible
    qtbot.waitUntil(lambda: len(sent.items) == 1, timeout=5000)


def test_accepting_a_word_then_all(qtbot, model, source, service) -> None:
    type_keys(model, source, "The")
    wait_for_ghost(qtbot, model)
    word = model.accept_word()
    assert word == " quick"
    insert(model, source, word)
    assert model.ghost == " brown fox jumps"
    rest = model.accept_all()
    insert(model, source, rest)
    assert source.text == "The quick brown fox jumps"
    assert not model.visible
    assert model.waiting  # and the next suggestion is on its way
    wait_for_ghost(qtbot, model)


def test_escape_and_cursor_moves_dismiss(qtbot, model, source) -> None:
    type_keys(model, source, "The")
    wait_for_ghost(qtbot, model)
    model.dismiss()
    assert not model.visible and model.ghost == "" and model.anchor == -1
    model.request_now()
    wait_for_ghost(qtbot, model)
    source.cursor = 1
    model.on_cursor_moved(1)
    assert not model.visible


def test_no_suggestion_in_the_middle_of_a_paragraph(qtbot, model, source, service) -> None:
    source.text, source.cursor = "The end of it.", 4
    sent = Recorder()
    service.request_sent.connect(sent)
    with qtbot.assertNotEmitted(service.request_sent, wait=100):
        insert(model, source, "x")
    assert not model.waiting


def test_request_now_skips_the_pause(qtbot, model, source, service, settings) -> None:
    settings.set_value("completion/debounce_ms", 1000)
    assert service.debounce_ms == 1000
    source.text = source.text + "The"
    source.cursor = 3
    with qtbot.waitSignal(service.request_sent, timeout=200):
        model.request_now()
    wait_for_ghost(qtbot, model)


def test_a_longer_suggestion_on_request(qtbot, model, source) -> None:
    type_keys(model, source, "The")
    wait_for_ghost(qtbot, model, " quick brown fox jumps")
    model.request_now()  # Alt+\ again
    wait_for_ghost(qtbot, model, " quick brown fox jumps over the lazy dog and runs far away "
                                 "into the night")


def test_cycling_asks_for_alternatives_then_cycles(qtbot, model, source, generator) -> None:
    type_keys(model, source, "The")
    wait_for_ghost(qtbot, model)
    first = model.ghost
    model.cycle(1)
    qtbot.waitUntil(lambda: len(model.alternatives) > 1 and not model.waiting, timeout=5000)
    assert model.alternatives[0] == first
    assert model.index == 1 and model.ghost == " variant 1"  # not ending on "of the"
    assert (generator.calls[-1].method, generator.calls[-1].n) == ("branches", 4)
    model.cycle(-1)
    assert model.ghost == first
    model.cycle(-1)
    assert model.index == len(model.alternatives) - 1


def test_disabled_or_not_ready_means_no_requests(qtbot, model, source, service, settings) -> None:
    settings.set_value("completion/enabled", False)
    with qtbot.assertNotEmitted(service.request_sent, wait=100):
        type_keys(model, source, "The")


def test_the_prompt_prefix_stays_the_same_while_typing(qtbot, model, source, generator,
                                                       service) -> None:
    source.text = " ".join(f"w{i}" for i in range(1500)) + " "
    source.cursor = len(source.text)
    prompts = []
    for word in ("alpha ", "beta ", "gamma "):
        for char in word:
            insert(model, source, char)
        wait_for_ghost(qtbot, model)
        prompts.append(generator.calls[-1].prompt)
    assert len(prompts[0]) <= 1600
    assert prompts[1].startswith(prompts[0]) and prompts[2].startswith(prompts[1])


def test_errors_become_a_message(qtbot, service, host, settings, source, use_generator) -> None:
    model = SuggestionViewModel(service, host, settings)
    model.attach(source)
    use_generator(FakeGenerator(fail=RuntimeError("onnx went away")))
    with qtbot.waitSignal(model.error, timeout=5000) as blocker:
        type_keys(model, source, "The")
    assert "onnx went away" in blocker.args[0]


def test_continue_streams_and_stops(qtbot, service, host, settings, source, use_generator) -> None:
    slow = FakeGenerator(lambda prompt: " ".join(f"w{i}" for i in range(300)), delay_s=0.01)
    use_generator(slow)
    model = SuggestionViewModel(service, host, settings)
    model.attach(source)
    source.text, source.cursor = "Once upon a time", 16
    pieces = Recorder()
    model.continue_piece.connect(pieces)
    with qtbot.waitSignal(model.continuing_changed) as started:
        assert model.start_continue()
    assert started.args == [True] and model.continuing
    qtbot.waitUntil(lambda: len(pieces.items) >= 3, timeout=5000)
    with qtbot.waitSignal(model.continue_finished, timeout=5000) as finished:
        model.stop_continue()
    assert finished.args == ["stopped"]
    assert not model.continuing
    assert "".join(pieces.items).startswith("w0 w1")


def test_a_cursor_at_rest_in_a_new_place_primes_the_model(qtbot, model: SuggestionViewModel,
                                                           service: CompletionService,
                                                           source: StringSource,
                                                           generator: FakeGenerator) -> None:
    source.text = "The fox ran.\n\nIt was a dark night and"
    source.cursor = len(source.text)
    with qtbot.waitSignal(service.primed, timeout=5000):
        model.on_cursor_moved(source.cursor)  # e.g. a click at the end of the text
    assert generator.primes == [source.text]
    assert generator.calls == []  # nothing is suggested until the writer types
    source.cursor = 3  # inside the first line, before " fox ran.": no suggestion could appear there
    model.on_cursor_moved(source.cursor)
    source.cursor = len(source.text)
    type_keys(model, source, " s")  # typing asks for suggestions, not primings
    wait_for_ghost(qtbot, model)
    assert generator.primes == [source.text[:-2]]


def test_continue_samples_by_default_and_can_follow_the_panel(qtbot, service, host, settings, source,
                                                              use_generator) -> None:
    """Greedy decoding (the panel's default, right for a few words) loops over a long passage, so
    Continue uses the Balanced preset unless the settings say otherwise; the panel's seed carries over."""
    generator = FakeGenerator(lambda prompt: "and so on.")
    use_generator(generator)
    model = SuggestionViewModel(service, host, settings)
    model.attach(source)
    source.text, source.cursor = "Once upon a time", 16
    settings.set_value("sampling/seed", 7)
    settings.set_value("continue/max_new_tokens", 120)
    with qtbot.waitSignal(model.continue_finished, timeout=5000):
        assert model.start_continue()
    sent = generator.calls[-1].config
    assert (sent.strategy, sent.top_p, sent.temperature, sent.repetition_penalty) == ("top-p", 0.9, 0.8, 1.1)
    assert (sent.seed, sent.max_new_tokens, sent.num_return) == (7, 120, 1)
    assert settings.sampling_config().strategy == "greedy"  # the suggestions' settings are untouched

    settings.set_value("continue/style", "panel")
    settings.set_value("sampling/repetition_penalty", 1.3)
    with qtbot.waitSignal(model.continue_finished, timeout=5000):
        assert model.start_continue()
    sent = generator.calls[-1].config
    assert (sent.strategy, sent.repetition_penalty, sent.seed, sent.max_new_tokens) == ("greedy", 1.3, 7, 120)
    settings.set_value("continue/style", "Creative")
    assert (model.continue_config().top_p, model.continue_config().temperature) == (0.95, 1.1)


def test_inline_suggestions_never_wait_for_beam_search(qtbot, model, source, service, settings,
                                                       generator) -> None:
    """The writer's panel: the Precise preset (beam search) took 1.3-1.9 s per inline suggestion on a
    CPU, so most keystrokes got none. Suggestions as you type (and priming) decode greedily whatever
    the preset; the panel's beams serve Alt+] alternatives, and Continue keeps its own decoding."""
    settings.apply_preset("Precise")
    continue_before = model.continue_config()
    type_keys(model, source, "The")
    wait_for_ghost(qtbot, model)
    sent = generator.calls[-1].config
    assert (sent.is_beam, sent.is_greedy, sent.num_return) == (False, True, 1)
    assert model.inline_config() == settings.sampling_config().with_(strategy="greedy")
    assert settings.sampling_config().is_beam  # the panel keeps what the writer chose
    model.cycle(1)  # Alt+]: the panel's beams
    qtbot.waitUntil(lambda: not model.waiting, timeout=5000)
    assert generator.calls[-1].config.is_beam and generator.calls[-1].config.num_beams == 4
    assert model.continue_config() == continue_before
    assert (continue_before.strategy, continue_before.top_p) == ("top-p", 0.9)  # Balanced by default
