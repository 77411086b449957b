"""AIGC Studio: an offline writing and design assistant.

The app is offline: nothing it runs may open a network connection. onnxruntime (1.17 and later, on
Linux) starts a telemetry uploader some seconds after it is imported unless ``ORT_DISABLE_TELEMETRY=1``
is in the environment *before* its first import; every entry point (the app, the CLI, the workshop,
the benchmarks) imports this package first, so it is set here, overriding any other value.
"""

import os as _os
import sys as _sys

_os.environ["ORT_DISABLE_TELEMETRY"] = "1"
if "onnxruntime" in _sys.modules:  # imported before us: its uploader may already be armed
    import warnings as _warnings

    _warnings.warn("onnxruntime was imported before aigc_studio, so its telemetry could not be turned "
                   "off; set ORT_DISABLE_TELEMETRY=1 in the environment", RuntimeWarning, stacklevel=2)

__version__ = "0.1.0"
