"""SIGKILL the document service at random moments while it types and saves; print what was lost.

```
python bench/kill_probe.py                      # 130 kills, 20 MB document (~5 min)
python bench/kill_probe.py --kills 20 --mb 1    # quicker
```

Each kill starts tests/faults/document_kill_child.py on a document of ``--mb`` MB (typing a word every
20 ms; every third run also saves every 40 words), kills it 0.3-2.5 s into typing, and reads back
recovery through the public RecoveryStore API (or the saved file, if newer). A second table times
the recovery writes themselves (journal record, full snapshot) for 1 MB and 20 MB documents.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aigc_studio.services.recovery import RecoverySnapshot, RecoveryStore
from tests.faults.document_kill_child import base_text
from tests.faults.kill_harness import kill_while_typing


def probe(kills: int, megabytes: float, seed: int) -> None:
    rng = random.Random(seed)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(kills):
            mode = "save" if index % 3 == 2 else "type"
            kill = kill_while_typing(Path(folder) / f"k{index}", rng, mode=mode,
                                     base_bytes=int(megabytes * 1_000_000), after=(0.3, 2.5))
            rows.append((mode, kill))
            shutil.rmtree(Path(folder) / f"k{index}")
            print(f"\r{index + 1}/{kills} kills", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print("| runs | kills | mid-save | most lost (ms) | most lost (chars) | median lost (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in ("type", "save", "all"):
        chosen = [k for m, k in rows if mode in ("all", m)]
        if not chosen:
            continue
        print(f"| {mode} | {len(chosen)} | {sum(k.saving for k in chosen)} | "
              f"{max(k.lost_ms for k in chosen):.0f} | {max(k.lost for k in chosen)} | "
              f"{statistics.median(k.lost_ms for k in chosen):.0f} |")


def costs() -> None:
    print("\n| document | journal record (ms) | full snapshot (ms) |")
    print("|---:|---:|---:|")
    for megabytes in (1, 20):
        text = base_text(megabytes * 1_000_000)
        with tempfile.TemporaryDirectory() as folder:
            store = RecoveryStore(folder)
            store.write(RecoverySnapshot(text))
            journal, full = [], []
            for index in range(20):
                at = len(text) // 2 + index
                text = text[:at] + "x" + text[at:]
                started = time.perf_counter()
                store.record(RecoverySnapshot(text))
                journal.append((time.perf_counter() - started) * 1000)
            for _ in range(5):
                started = time.perf_counter()
                store.write(RecoverySnapshot(text))
                full.append((time.perf_counter() - started) * 1000)
            store.close()
        print(f"| {megabytes} MB | {statistics.median(journal):.1f} | "
              f"{statistics.median(full):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=130)
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--costs-only", action="store_true")
    args = parser.parse_args()
    if not args.costs_only:
        probe(args.kills, args.mb, args.seed)
    costs()


if __name__ == "__main__":
    main()
