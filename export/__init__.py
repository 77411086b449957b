"""The model workshop: data, training, ONNX export and validation (torch lives here only).

Importing aigc_studio first turns onnxruntime's telemetry off before any module here imports it.
"""

import aigc_studio  # noqa: F401
