"""onnxruntime sessions: provider choice, threads, and checking a graph against its manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from aigc_studio.runtime.package import ModelPackage, PackageError

DEVICES = ("auto", "cpu", "gpu")


def max_threads() -> int:
    """The most intra-op threads a session may ask for: 4 per CPU core (at least 8). More only contend,
    and each thread costs a stack (100,000 of them exhausted the machine's memory)."""
    return max(8, 4 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class SessionInfo:
    """A loaded session, the provider it runs on, the graph variant, and why the GPU is not used
    (empty when it is, or when the CPU was asked for)."""

    session: Any
    provider: str
    variant: str
    note: str


def gpu_status() -> tuple[bool, str]:
    """(usable, reason): whether onnxruntime can run on a GPU here, and if not, why."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return True, ""
    return False, ("this onnxruntime build has no CUDA provider (install onnxruntime-gpu with a CUDA "
                   f"driver to use the GPU); available: {', '.join(available)}")


def choose_providers(device: str) -> tuple[list[str], str]:
    """Requested providers filtered by what onnxruntime offers, and a note when the GPU is not used."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return ["CPUExecutionProvider"], ""
    ok, why = gpu_status()
    if ok:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], ""
    return ["CPUExecutionProvider"], why


def create_session(package: ModelPackage, *, device: str = "auto", threads: int = 0,
                   variant: str | None = None, graph_key: str = "graphs", spin: bool = True) -> SessionInfo:
    """Open the package's graph and check its inputs and outputs against the manifest. `spin` lets the
    intra-op threads busy-wait for work between operators (see below)."""
    import onnxruntime as ort

    if not 0 <= int(threads) <= max_threads():
        raise ValueError(f"threads must be from 0 (automatic) to {max_threads()} (4 per CPU core here), "
                         f"not {threads}")
    providers, note = choose_providers(device)
    if variant is None and providers[0] == "CUDAExecutionProvider":
        variants = package.spec.graphs[graph_key].variants
        variant = "fp32" if "fp32" in variants else None  # int8 dynamic quantisation is a CPU format
    chosen, path = package.graph(variant)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # Spinning (onnxruntime's default) keeps a decode step's many small operators from waking sleeping
    # threads, but steals the cores of another busy process: a setting ("model/spin"), on by default
    # (docs/design.md, "Threads: spinning or sleeping").
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises InvalidProtobuf, Fail, ... for a bad graph
        raise PackageError(f"model package {package.path}: {path.name} could not be loaded by "
                           f"onnxruntime ({type(exc).__name__}: {str(exc).strip()[:300]})") from None
    io = package.spec.graphs[graph_key]
    got_in = [i.name for i in session.get_inputs()]
    got_out = [o.name for o in session.get_outputs()]
    if got_in != list(io.inputs) or got_out != list(io.outputs):
        raise PackageError(
            f"model package {package.path}: {path.name} has inputs {got_in} and outputs {got_out}, "
            f"but the manifest declares inputs {list(io.inputs)} and outputs {list(io.outputs)}")
    used = session.get_providers()[0]
    if device == "gpu" and used != "CUDAExecutionProvider" and not note:
        note = "the CUDA provider failed to start; running on the CPU"
    return SessionInfo(session=session, provider=used, variant=chosen, note=note)
