"""Settings: declared once, validated, persisted, bad values fall back with a log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aigc_studio.core.sampling import FIELDS, PRESETS
from aigc_studio.services.completion_service import DEBOUNCE_MS
from aigc_studio.services.settings import OPTIONS, Settings, sampling_key


def test_defaults_come_from_the_declarations(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "settings.ini")
    for key, option in OPTIONS.items():
        assert settings.value(key) == option.default
    assert settings.sampling_config().to_dict() == {n: f.default for n, f in FIELDS.items()}
    assert settings.value("completion/debounce_ms") == DEBOUNCE_MS == 30


def test_every_option_is_documented() -> None:
    for option in OPTIONS.values():
        assert option.title and option.help, option.key
        if option.kind in (int, float) and option.key != "sampling/seed":
            assert option.minimum is not None and option.maximum is not None, option.key


def test_settings_persist(tmp_path: Path, qtbot) -> None:
    path = tmp_path / "settings.ini"
    settings = Settings(path)
    with qtbot.waitSignal(settings.changed) as blocker:
        settings.set_value("completion/debounce_ms", 400)
    assert blocker.args == ["completion/debounce_ms", 400]
    settings.set_value("sampling/temperature", 0.7)
    settings.set_value("sampling/seed", 1234)
    settings.set_value("model/device", "cpu")
    settings.set_value("completion/enabled", False)
    settings.add_recent_file(tmp_path / "a.txt")
    settings.add_recent_file(tmp_path / "b.txt")
    settings.add_recent_file(tmp_path / "a.txt")
    settings.set_state("geometry", b"\x01\x02")
    settings.sync()
    del settings

    again = Settings(path)
    assert again.value("completion/debounce_ms") == 400
    assert again.value("sampling/temperature") == 0.7
    assert again.sampling_config().seed == 1234
    assert again.value("model/device") == "cpu"
    assert again.value("completion/enabled") is False
    assert again.recent_files() == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    assert again.state("geometry") == b"\x01\x02"


def test_no_signal_without_a_change(tmp_path: Path, qtbot) -> None:
    settings = Settings(tmp_path / "settings.ini")
    with qtbot.assertNotEmitted(settings.changed):
        assert not settings.set_value("completion/debounce_ms", DEBOUNCE_MS)


def test_bad_values_are_refused(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "settings.ini")
    with pytest.raises(ValueError, match="is too large: expected int from 0 to 1000"):
        settings.set_value("completion/debounce_ms", 5000)
    with pytest.raises(ValueError, match="one of"):
        settings.set_value("model/device", "tpu")
    with pytest.raises(KeyError, match="known"):
        settings.set_value("no/such", 1)


def test_bad_stored_values_fall_back_with_a_log_line(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "settings.ini"
    path.write_text("[completion]\ndebounce_ms=99999\nenabled=perhaps\n"
                    "[sampling]\ntemperature=hot\nstrategy=beam\n"
                    "[files]\nrecent=not json\n")
    with caplog.at_level(logging.WARNING):
        settings = Settings(path)
    assert settings.value("completion/debounce_ms") == DEBOUNCE_MS
    assert settings.value("completion/enabled") is True
    assert settings.value("sampling/temperature") == 1.0
    assert settings.value("sampling/strategy") == "beam"  # the good value is kept
    assert settings.recent_files() == []
    text = caplog.text
    assert "completion/debounce_ms=99999 is too large: expected int from 0 to 1000" in text
    assert "sampling/temperature='hot' is not a number" in text


def test_presets(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "settings.ini")
    settings.set_value("sampling/seed", 7)
    settings.apply_preset("Creative")
    config = settings.sampling_config()
    assert config.temperature == PRESETS["Creative"].temperature
    assert config.seed == 7  # the seed is the user's, not the preset's
    assert settings.matching_preset() == "Creative"
    settings.set_value(sampling_key("temperature"), 0.33)
    assert settings.matching_preset() == ""
