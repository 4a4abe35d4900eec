"""The text label: a final line ``[AI-generated]`` (``[人工智能生成]`` for zh-CN)."""
from __future__ import annotations

from engine.labels.metadata import TEXT_LABELS

def label_text(text: str, *, locale: str = "en-US") -> str:
    """``text`` followed by an AI-generated line (once, however often it is called)."""
    label = TEXT_LABELS.get(locale, TEXT_LABELS["en-US"])
    stripped = text.rstrip()
    if any(stripped.endswith(lbl) for lbl in TEXT_LABELS.values()):
        return stripped
    return f"{stripped}\n\n{label}"
