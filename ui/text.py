"""User-made text in the page: shown as text, never as Markdown.

Streamlit renders the body of ``st.error``, ``st.warning``, ``st.info``, ``st.success`` and ``st.markdown`` as
Markdown (links, images, ``:red[...]`` and ``:material/...:`` directives, autolinked URLs). Text that a user, a
design file, a link or custom code can shape (exception messages, names, values) goes through ``plain`` first, so
it can neither pull an image from another host nor show a link it was not meant to.
"""

from __future__ import annotations

import re

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping all of them turns off
# emphasis, links, images, HTML, math and Streamlit's directives at once.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# GitHub-style autolinks (http://..., www.x.org, name@host) are found in the text after escapes are resolved, so
# no escape stops them; an invisible word joiner (U+2060) after the ":" of "://", the "www" and the "@" does.
_AUTOLINK = re.compile(r"(:(?=//)|www(?=\.)|@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def plain(text: object) -> str:
    """``text`` escaped so that Markdown shows it character for character (with no link in it)."""
    lines = str(text).splitlines() or [""]
    return "  \n".join(_PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(rf"\1{WORD_JOINER}", line)) for line in lines)
