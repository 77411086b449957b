"""bench/suggest_replay.py on the tiny package: every row replays the app's requests."""

from __future__ import annotations

from pathlib import Path

from bench.suggest_replay import ROWS, run, table


def test_replay_rows_agree_and_the_memo_saves_runs(tiny_text_package: Path) -> None:
    result = run(str(tiny_text_package), threads=1, chars=40, rounds=1)
    rows = result["rows"]
    assert result["asked"] > 0
    assert len(rows[ROWS[0]]["settled"]) == result["asked"]
    for row in ROWS:
        assert len(rows[row]["settled"]) == result["asked"]
    # The mask changes the cost, not the suggestions. Without the memo a prompt's last logits come
    # from a one-token run instead of the prefill's (int8 activations are scaled per run), so a
    # near-tie may go the other way now and then.
    assert all(rows["with the vocabulary scan"]["same"])
    same = rows["without the logits memo"]["same"]
    assert sum(same) >= 0.75 * len(same)
    memo = sum(rows["the app"]["runs"])
    assert memo < sum(rows["without the logits memo"]["runs"])
    assert rows["with the vocabulary scan"]["runs"] == rows["the app"]["runs"]
    text = table(result)
    assert all(f"| {row} |" in text for row in ROWS)
