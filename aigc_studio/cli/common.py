"""What the subcommands of `aigc-studio` share: errors on standard error, UTF-8 input files, and the
sampling options, which map onto the app's SamplingConfig."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aigc_studio.core.sampling import FIELDS, PRESETS, STOP_MODES, STRATEGIES, SamplingConfig


def _add_sampling_options(p: argparse.ArgumentParser) -> None:
    def opt(flag: str, field: str, **kw: Any) -> None:
        s = FIELDS[field]
        p.add_argument(flag, dest=field, default=None, help=f"{s.help} ({s.range_text()})", **kw)

    opt("--strategy", "strategy", choices=STRATEGIES)
    opt("--temperature", "temperature", type=float)
    opt("--top-k", "top_k", type=int)
    opt("--top-p", "top_p", type=float)
    opt("--min-p", "min_p", type=float)
    opt("--beams", "num_beams", type=int)
    opt("--length-penalty", "length_penalty", type=float)
    opt("--num-return", "num_return", type=int)
    opt("--repetition-penalty", "repetition_penalty", type=float)
    opt("--max-tokens", "max_new_tokens", type=int)
    opt("--seed", "seed", type=int)
    opt("--stop", "stop", choices=STOP_MODES)
    p.add_argument("--preset", choices=tuple(PRESETS), help="start from the app's preset of that name "
                   "(" + "; ".join(f"{k}: {v.describe()}" for k, v in PRESETS.items()) + "); the "
                   "options above change it (default: greedy, 32 tokens)")


def _sampling_config(args: argparse.Namespace) -> SamplingConfig:
    changes = {name: getattr(args, name) for name in FIELDS if getattr(args, name, None) is not None}
    base = PRESETS[args.preset] if getattr(args, "preset", None) else SamplingConfig()
    return base.with_(**changes).validated()


def read_text_file(path: str) -> str:
    """A UTF-8 text file, or a ValueError that says where it is not UTF-8."""
    data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not valid UTF-8 (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                         "convert it to UTF-8 first") from None


def _fail(message: str) -> int:
    print(f"aigc-studio: error: {message}", file=sys.stderr)
    return 2
