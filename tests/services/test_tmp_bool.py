import time
from PySide6.QtCore import QTimer
from aigc_studio.core.sampling import SamplingConfig
from .test_completion_service import make_service, LONG_TEXT, CONFIG
from .fakes import FakeGenerator

def test_a(qtbot, make_service):
    generator = FakeGenerator(lambda prompt: LONG_TEXT, delay_s=0.005)
    service, _ = make_service(generator)
    with qtbot.waitSignal(service.continue_finished, timeout=10000):
        service.start_continue("Go", CONFIG.with_(max_new_tokens=150))

def test_b(qtbot, make_service):
    generator = FakeGenerator(lambda prompt: LONG_TEXT, delay_s=0.005)
    service, _ = make_service(generator)
    for i in range(20):
        service.request(f"Go{i}", CONFIG, max_words=50)
    with qtbot.waitSignal(service.suggestion_ready, timeout=10000, check_params_cb=lambda s: s.final):
        pass
