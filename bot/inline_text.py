"""Text results shown in the result embed instead of attached: a list of short one-line outputs
(names, titles) as a numbered list, each in a code span so it copies with one tap; longer texts
as blocks. Keyed by presentation (``inline_text``), not by command."""
from __future__ import annotations

from engine.protocol import JobView

EMBED_TEXT_LIMIT = 3800  # of the embed description's 4096, leaving room for the request line
SHORT = 80  # a one-line output up to this long is listed


def inline_texts(view: JobView) -> list[tuple[int, str]]:
    """(output index, text) of the outputs a front shows inline."""
    return [(a.index, a.text) for a in view.artifacts if a.presentation.value == "inline_text" and a.text]


def _code(text: str) -> str:
    # a backtick inside would end the span: Discord has no escape there, so use a look-alike
    return "`" + text.replace("`", "ˋ") + "`"


def text_body(view: JobView) -> str | None:
    """The embed's text: ``**1.** `Mara Whitlock``` lines for short one-line outputs, else the
    texts separated by blank lines; None when there is no inline text or it does not fit (then
    the text files are attached instead)."""
    texts = inline_texts(view)
    if not texts:
        return None
    if len(texts) > 1 and all("\n" not in t and len(t) <= SHORT for _, t in texts):
        body = "\n".join(f"**{i + 1}.** {_code(t)}" for i, t in texts)
    else:
        body = "\n\n".join(t for _, t in texts)
    return body if len(body) <= EMBED_TEXT_LIMIT else None


def shown_inline(view: JobView) -> set[str]:
    """Artifact ids whose text the embed shows (not attached as files again)."""
    if text_body(view) is None:
        return set()
    return {a.id for a in view.artifacts if a.presentation.value == "inline_text" and a.text}
