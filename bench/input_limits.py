"""Memory and time of the inputs that once grew without limit, against an ordinary input of each kind.

```
python bench/input_limits.py            # every case (~2 min)
python bench/input_limits.py --only complete,models
```

Each command runs in its own process (under an 8 GB address-space limit, so that a regression fails
instead of swapping the machine) and the table gives its peak resident memory, wall time, exit code and
the first line it printed on standard error. The baseline row of each case is the same command with an
ordinary input. Uses the shipped writer-tiny and emoji-style packages.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADDRESS_SPACE = 8 << 30
_WRAPPER = ("import resource, subprocess, sys; "
            "resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit})); "
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
            "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
            "lines = [x for x in p.stderr.splitlines() if x.strip() and 'propagateSizeHints' not in x]; "
            "print(lines[-1] if lines else '')")  # the last line that is not a notice of Qt's offscreen plugin


@dataclass
class Run:
    code: int
    peak_mb: float
    seconds: float
    message: str


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> Run:
    """Run `argv` under the address-space limit; its peak RSS from a wrapper process of its own."""
    wrapper = [sys.executable, "-c", _WRAPPER.format(limit=ADDRESS_SPACE), *argv]
    t0 = time.perf_counter()
    try:
        out = subprocess.run(wrapper, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})})
    except subprocess.TimeoutExpired:
        return Run(-1, float("nan"), timeout, f"still running after {timeout:.0f} s (killed)")
    seconds = time.perf_counter() - t0
    first, _, message = out.stdout.partition("\n")
    code, rss_kb = (int(x) for x in first.split())
    return Run(code, rss_kb / 1024, seconds, message.strip()[:110])


def _png_with_text_bomb(path: Path, inflated: int) -> None:
    """A 1x1 PNG with a zTXt chunk that inflates to `inflated` bytes of 'a'."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    block = b"a" * (1 << 20)
    body = b"".join(comp.compress(block) for _ in range(inflated >> 20)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\0\0\0\0\0")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"zTXt", b"aigc-studio.record\0\0" + body)
                     + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


def _package_with(folder: Path, name: str, **config: object) -> Path:
    src = ROOT / "resources" / "models" / name
    dst = folder / "models" / name
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["config"].update(config)
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst.parent


def cases(tmp: Path) -> dict[str, list[tuple[str, list[str], dict[str, str]]]]:
    cli = [sys.executable, "-m", "aigc_studio"]
    gen = [*cli, "generate", "--model", "emoji-style"]
    app = [*cli, "--data-dir", str(tmp / "data"), "--settings", str(tmp / "settings.ini"),
           "--screenshot", str(tmp / "shot.png"), "--screenshot-after", "2"]
    (tmp / "settings.ini").write_text("[model]\nname=writer-tiny\n")
    small = tmp / "note.txt"
    small.write_text("A short note.\n")
    big = tmp / "big.txt"
    with open(big, "wb") as f:
        f.truncate(60_000_000)
    fifo = tmp / "fifo.txt"
    os.mkfifo(fifo)
    bomb = tmp / "bomb.png"
    _png_with_text_bomb(bomb, 1 << 30)
    made = tmp / "made.png"
    subprocess.run([*gen, "--seed", "3", "-o", str(made)], check=True, capture_output=True)
    huge_layers = {"AIGC_STUDIO_MODELS": str(_package_with(tmp / "a", "writer-tiny", n_layer=10**9))}
    nested = tmp / "b" / "models" / "nested"
    nested.mkdir(parents=True)
    (nested / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    complete = [*cli, "complete", "--model", "writer-tiny", "--max-tokens", "4", "The cat"]
    return {
        "interpolation frames": [("--frames 16", [*gen, "--interpolate", "1", "2", "--frames", "16",
                                                  "-o", str(tmp / "a.gif")], {}),
                                 ("--frames 100000", [*gen, "--interpolate", "1", "2", "--frames", "100000",
                                                      "-o", str(tmp / "b.gif")], {})],
        "--from-png text": [("a PNG the app made", [*gen, "--from-png", str(made), "-o", str(tmp / "c.png")], {}),
                            ("1 GB zTXt bomb (1 MB file)", [*gen, "--from-png", str(bomb),
                                                            "-o", str(tmp / "d.png")], {})],
        "manifest n_layer": [("writer-tiny", complete, {}), ("n_layer 10^9", complete, huge_layers)],
        "manifest nesting": [("models", [*cli, "models"], {}),
                             ("200,000 levels", [*cli, "models"], {"AIGC_STUDIO_MODELS": str(nested.parent)})],
        "threads": [("--threads 2", [*complete[:4], "--threads", "2", *complete[4:]], {}),
                    ("--threads 100000", [*complete[:4], "--threads", "100000", *complete[4:]], {})],
        "document": [("a small note", [*app, str(small)], {}), ("/dev/zero", [*app, "/dev/zero"], {}),
                     ("a FIFO", [*app, str(fifo)], {}), ("60 MB file", [*app, str(big)], {})],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated words of the cases to run")
    args = parser.parse_args()
    words = [w for w in args.only.split(",") if w]
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, address space limited to "
          f"{ADDRESS_SPACE >> 30} GB\n")
    print("| case | input | exit | peak RSS (MB) | x baseline | wall (s) | message |")
    print("|---|---|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as folder:
        for case, inputs in cases(Path(folder)).items():
            if words and not any(w in case for w in words):
                continue
            baseline = None
            for label, argv, env in inputs:
                r = run(argv, env)
                baseline = baseline or r.peak_mb
                print(f"| {case} | {label} | {r.code} | {r.peak_mb:.0f} | {r.peak_mb / baseline:.2f} | "
                      f"{r.seconds:.1f} | {r.message.replace('|', '/')} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
