"""Benchmarks that print tables (see bench/README.md).

Importing aigc_studio first turns onnxruntime's telemetry off before any benchmark imports it.
"""

import aigc_studio  # noqa: F401
