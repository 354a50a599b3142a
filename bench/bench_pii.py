"""10 MB of dialogue text → PII scrub time, against a plain `str.replace` pass over the same text.

    python bench/bench_pii.py [--mb 10]

The scrubber must stay linear in its input (issue 14: one 100,000-character turn took 58 s). The text
mixes ordinary turns (English and Chinese, e-mails, phone, ID and card numbers) with the adversarial
shapes that made it quadratic: long runs of word characters, digits and dotted words without a space.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialc_runtime.data.pii import scrub  # noqa: E402

TURNS = (
    "Hi, I'm looking for a 2-bedroom flat near Riverside, budget 3,500 a month. ",
    "您好，我想在朝阳区租一套两居室，预算每月八千左右，最好靠近地铁站。",
    "Sure, mail me at li.wei+home@example.com.cn or call 138 0013 8000. ",
    "身份证 11010519881380013X，卡号 6222 0202 0000 1234，电话 (010) 6552-9988。",
)
HOSTILE = ("a" * 100_000, "好" * 100_000, "1" * 100_000, "a." * 50_000)


def corpus(megabytes: float) -> list[str]:
    """Turns adding up to about `megabytes` MB of UTF-8: nine ordinary parts to one hostile part."""
    target, size, turns = int(megabytes * 1_000_000), 0, []
    ordinary = "".join(TURNS) * 200
    index = 0
    while size < target:
        text = HOSTILE[index % len(HOSTILE)] if index % 10 == 9 else ordinary
        turns.append(text)
        size += len(text.encode())
        index += 1
    return turns


def timed(fn: object, turns: list[str]) -> float:
    start = time.perf_counter()
    for text in turns:
        fn(text)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="megabytes of text to scrub")
    args = parser.parse_args()
    turns = corpus(args.mb)
    megabytes = sum(len(t.encode()) for t in turns) / 1e6
    baseline = timed(lambda t: t.replace("a", "b").replace("@", " at "), turns)  # two copying passes
    scrubbed = timed(scrub, turns)
    print(f"text: {megabytes:.1f} MB in {len(turns)} turns (every tenth one a 100,000-character hostile run)")
    print(f"baseline str.replace pass: {baseline:.3f} s")
    print(f"pii scrub:                 {scrubbed:.3f} s  ({scrubbed / baseline:.0f}x the baseline, "
          f"{megabytes / scrubbed:.1f} MB/s)")


if __name__ == "__main__":
    main()
