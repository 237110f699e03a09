"""The LLM prompt helper. (To be built: the prompt helper part.)

improve(prompt, *, english=False) -> Suggestion: one better prompt, in the person's language
unless `english`; on a timeout, an error, an empty, overlong or refused answer, the original
with `fallback_reason` saying why (translated).
rewrites(prompt, count) -> Rewrites: `count` different rewrites for a variant set ("Surprise
me"), or the reason none could be had.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Suggestion:
    original: str
    prompt: str  # the suggestion, or the original when the helper fell back
    fallback_reason: str = ""  # empty: the LLM's suggestion; else why the original is kept

    @property
    def fell_back(self) -> bool:
        return bool(self.fallback_reason)


@dataclass(frozen=True)
class Rewrites:
    original: str
    prompts: list[str] = field(default_factory=list)
    fallback_reason: str = ""


def improve(prompt: str, *, english: bool = False) -> Suggestion:
    raise NotImplementedError


def rewrites(prompt: str, count: int) -> Rewrites:
    raise NotImplementedError
