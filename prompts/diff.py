"""A word-level comparison of a prompt and its suggestion, for showing them side by side.

Latin words are compared whole; CJK text, which has no spaces, character by character. The
pieces are plain text: the template escapes them and wraps changes in <del>/<ins>.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

TOKEN = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*|\s+|.", re.DOTALL)
CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


@dataclass(frozen=True)
class Piece:
    text: str
    changed: bool = False


@dataclass(frozen=True)
class Comparison:
    original: list[Piece]  # changed pieces: removed from the original (<del>)
    suggestion: list[Piece]  # changed pieces: added by the suggestion (<ins>)


def tokens(text: str) -> list[str]:
    found: list[str] = []
    for token in TOKEN.findall(text):
        if CJK.search(token):
            found.extend(token)  # one character at a time
        else:
            found.append(token)
    return found


def compare(original: str, suggestion: str) -> Comparison:
    before, after = tokens(original), tokens(suggestion)
    left: list[Piece] = []
    right: list[Piece] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            left.append(Piece("".join(before[a1:a2])))
            right.append(Piece("".join(after[b1:b2])))
            continue
        if a2 > a1:
            left.append(Piece("".join(before[a1:a2]), changed=True))
        if b2 > b1:
            right.append(Piece("".join(after[b1:b2]), changed=True))
    return Comparison(left, right)
