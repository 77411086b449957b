"""The `aigc-studio` command: the desktop app, and the command-line tools around the same runtime.

    aigc-studio [FILE]                       open the app (on FILE)
    aigc-studio complete [options] PROMPT    continue a prompt ('-' reads standard input)
    aigc-studio models                       list installed model packages
    aigc-studio eval perplexity --model NAME FILE
    aigc-studio eval keystrokes --model NAME FILE
    aigc-studio eval bleu|rouge --model NAME FILE   continue held-out passages, score the second halves
    aigc-studio eval fid --model NAME        domain FID/KID of an image model
    aigc-studio generate [options] -o OUT    images with an image model
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .common import _fail, read_text_file
from .image import (
    GIF_ALPHA_THRESHOLD,
    GIF_MATTE,
    GIF_TRANSPARENT_INDEX,
    _add_generate_parser,
    _add_image_eval_parsers,
    _eval_condition,
    _eval_fid,
    cmd_generate,
)
from .progress import _Progress as _Progress  # re-exported: the progress tests reach it as cli._Progress
from .text import (
    DEFAULT_TEXT_MODEL,
    _add_complete_parser,
    _add_models_parser,
    _add_text_eval_parsers,
    _eval_keystrokes,
    _eval_overlap,
    _eval_perplexity,
    _eval_repetition,
    cmd_complete,
    cmd_models,
)

__all__ = ["DEFAULT_TEXT_MODEL", "GIF_ALPHA_THRESHOLD", "GIF_MATTE", "GIF_TRANSPARENT_INDEX", "SUBCOMMANDS",
           "build_parser", "cmd_complete", "cmd_eval", "cmd_generate", "cmd_models", "main", "read_text_file"]

SUBCOMMANDS = ("complete", "models", "eval", "generate")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="aigc-studio", description="AIGC Studio: offline writing and "
                                 "design assistant. Without a command, opens the app.")
    sub = ap.add_subparsers(dest="command")

    _add_complete_parser(sub)
    _add_models_parser(sub)
    e = sub.add_parser("eval", help="evaluate a model")
    esub = e.add_subparsers(dest="metric", required=True)
    _add_text_eval_parsers(esub)
    _add_image_eval_parsers(esub)
    _add_generate_parser(sub)
    return ap


def cmd_eval(args: argparse.Namespace) -> int:
    if args.metric == "perplexity":
        return _eval_perplexity(args)
    if args.metric == "keystrokes":
        return _eval_keystrokes(args)
    if args.metric == "fid":
        return _eval_fid(args)
    if args.metric == "condition":
        return _eval_condition(args)
    if args.metric in ("bleu", "rouge"):
        return _eval_overlap(args)
    if args.metric == "repetition":
        return _eval_repetition(args)
    return _fail(f"unknown metric {args.metric}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        from aigc_studio.app import main as app_main

        return app_main(argv)
    args = build_parser().parse_args(argv)
    from aigc_studio.runtime.package import PackageError

    try:
        return {"complete": cmd_complete, "models": cmd_models, "eval": cmd_eval,
                "generate": cmd_generate}[args.command](args)
    except (PackageError, ValueError, OSError, UnicodeDecodeError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
