"""The LLM prompt helper.

improve(prompt, *, english=False) -> Suggestion: one better prompt, in the person's language
unless `english`; on a timeout, an error, an empty, overlong or refused answer, the original
with `fallback_reason` saying why (translated).
rewrites(prompt, count) -> Rewrites: `count` different rewrites for a variant set ("Surprise
me"), or the reason none could be had.

The helper is off while PROMPT_LLM_BASE_URL or PROMPT_LLM_MODEL is empty: both then answer
with the original and a reason saying so. Messages are read in the active language when the
functions are called.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext, ngettext

from generator.forms import MAX_PROMPT_LENGTH

from . import llm
from .models import VariantSet

logger = logging.getLogger(__name__)

# The longest suggestion taken: ten times the person's prompt, at least MIN_ALLOWED_LENGTH
# (a three-word prompt may well grow to a sentence or two), at most MAX_SUGGESTION_LENGTH (the
# create form's limit on a prompt).
LENGTH_FACTOR = 10
MIN_ALLOWED_LENGTH = 200
MAX_SUGGESTION_LENGTH = MAX_PROMPT_LENGTH
MIN_REWRITES, MAX_REWRITES = VariantSet.MIN_SIZE, VariantSet.MAX_SIZE

SYSTEM_PROMPT = """You improve prompts for an AI image generator.
Rewrite the user's prompt into one clearer, more vivid prompt: name the subject, setting, style, \
lighting, composition and mood where that helps, and keep every idea the user gave.
{language}
Answer with the improved prompt only: no explanation, no title, no quotes, no markdown, no list.
Do not add a negative prompt or any "Negative prompt:" part.
Keep it under {limit} characters."""

REWRITES_PROMPT = """You write prompts for an AI image generator.
Write {count} different versions of the user's prompt: each keeps the user's subject and ideas \
but tries a different style, setting, lighting or composition.
{language}
Answer with a JSON array of {count} strings and nothing else, e.g. ["first prompt", "second prompt"].
Do not add negative prompts. Keep each under {limit} characters."""

KEEP_LANGUAGE = "Write in the same language as the user's prompt (Chinese stays Chinese, English stays English)."
IN_ENGLISH = "Write in English, whatever the language of the user's prompt."

# The start of an answer that declines instead of rewriting (English and Chinese).
REFUSAL = re.compile(
    r"^\W*(?:i['’]?m sorry|i am sorry|sorry[,.!]|i can(?:no|['’])t\b|i won['’]t\b|i['’]?m (?:unable|not able)|"
    r"i am (?:unable|not able)|as an ai\b|i apologi[sz]e|unfortunately,? i|"
    r"抱歉|很抱歉|非常抱歉|对不起|我无法|我不能|无法(?:提供|帮助|满足|处理))",
    re.IGNORECASE,
)
FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.DOTALL)
LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:improved prompt|optimi[sz]ed prompt|new prompt|prompt|提示词|优化后的提示词|改写后的提示词)"
    r"(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*",
    re.IGNORECASE,
)
NEGATIVE = re.compile(
    r"(?:^|\n|[.。;；]\s*|\s)(?:\*\*)?(?:negative prompts?|反向提示词|负面提示词)(?:\*\*)?\s*[:：]", re.I
)
QUOTES = ('""', "''", "“”", "‘’", "「」", "『』", "《》")


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


class Unusable(Exception):
    """The answer came but cannot be used: `kind` is one of EMPTY, TOO_LONG, REFUSED."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


TOO_LONG = "too_long"
REFUSED = "refused"
OFF = "off"


def enabled() -> bool:
    """The helper is configured (PROMPT_LLM_BASE_URL and PROMPT_LLM_MODEL)."""
    return llm.configured()


def allowed_length(original: str) -> int:
    return min(MAX_SUGGESTION_LENGTH, max(MIN_ALLOWED_LENGTH, LENGTH_FACTOR * len(original)))


def improve(prompt: str, *, english: bool = False) -> Suggestion:
    original = prompt.strip()
    if not enabled():
        return Suggestion(original, original, reason(OFF))
    limit = allowed_length(original)
    system = SYSTEM_PROMPT.format(language=IN_ENGLISH if english else KEEP_LANGUAGE, limit=limit)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": original}]
    try:
        answer = llm.chat(messages, temperature=0.7, max_tokens=max_tokens_for(limit))
        suggestion = clean(answer.content, limit=limit)
    except (llm.LLMError, Unusable) as failure:
        return Suggestion(original, original, _fell_back(failure))
    return Suggestion(original, suggestion)


def rewrites(prompt: str, count: int, *, english: bool = False) -> Rewrites:
    """`count` (2 to 6) distinct rewrites, none the original; fewer distinct usable ones than
    asked is a fallback (no prompts)."""
    original = prompt.strip()
    count = max(MIN_REWRITES, min(MAX_REWRITES, count))
    if not enabled():
        return Rewrites(original, [], reason(OFF))
    limit = allowed_length(original)
    system = REWRITES_PROMPT.format(count=count, language=IN_ENGLISH if english else KEEP_LANGUAGE, limit=limit)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": original}]
    try:
        answer = llm.chat(messages, temperature=0.9, max_tokens=max_tokens_for(limit * count))
        prompts = parse_list(answer.content, count=count, limit=limit, original=original)
    except (llm.LLMError, Unusable) as failure:
        return Rewrites(original, [], _fell_back(failure))
    return Rewrites(original, prompts)


def max_tokens_for(characters: int) -> int:
    """Room for `characters` of answer in any language (a CJK character can be a token or more)."""
    return min(4096, characters + 64)


def _fell_back(failure: Exception) -> str:
    kind = failure.kind if isinstance(failure, (llm.LLMError, Unusable)) else llm.MALFORMED
    logger.warning("prompt helper: fell back to the original prompt (%s)", kind)
    return reason(kind)


def clean(text: str, *, limit: int) -> str:
    """The suggestion without wrapping (code fences, quotes, a "Prompt:" label) or a negative
    prompt part; Unusable when it is empty, a refusal or longer than `limit`."""
    text = text.strip()
    if REFUSAL.match(text):
        raise Unusable(REFUSED)
    if fenced := FENCE.match(text):
        text = fenced.group(1).strip()
    text = LABEL.sub("", text, count=1).strip()
    if negative := NEGATIVE.search(text):
        text = text[: negative.start()].rstrip(" \n,;，；")
    text = _unquote(text)
    text = LABEL.sub("", text, count=1).strip()
    if REFUSAL.match(text):
        raise Unusable(REFUSED)
    if not text:
        raise Unusable(llm.EMPTY)
    if len(text) > limit:
        raise Unusable(TOO_LONG)
    return text


def _unquote(text: str) -> str:
    while len(text) >= 2 and any(text[0] == pair[0] and text[-1] == pair[1] for pair in QUOTES):
        text = text[1:-1].strip()
    return text


def parse_list(text: str, *, count: int, limit: int, original: str) -> list[str]:
    """Up to `count` distinct prompts from a JSON array (fenced or with text around it), or
    else one per line (numbered or bulleted); Unusable when fewer than two distinct remain."""
    text = text.strip()
    if fenced := FENCE.match(text):
        text = fenced.group(1).strip()
    if REFUSAL.match(text):
        raise Unusable(REFUSED)
    items = _json_list(text)
    if items is None:
        items = [re.sub(r"^\s*(?:[-*•]|\d+[.)、:：])\s*", "", line) for line in text.splitlines()]
    prompts: list[str] = []
    seen = {original.casefold()}
    too_long = False
    for item in items:
        if not isinstance(item, str):
            continue
        try:
            prompt = clean(item, limit=limit)
        except Unusable as unusable:
            too_long = too_long or unusable.kind == TOO_LONG
            continue
        if prompt.casefold() not in seen:
            seen.add(prompt.casefold())
            prompts.append(prompt)
    if len(prompts) < min(count, MIN_REWRITES):
        raise Unusable(TOO_LONG if too_long else llm.EMPTY)
    return prompts[:count]


def _json_list(text: str) -> list | None:
    start, end = text.find("["), text.rfind("]")
    if start == -1 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except ValueError:
        return None
    if isinstance(value, dict):  # {"prompts": [...]}
        value = next((v for v in value.values() if isinstance(v, list)), None)
    return value if isinstance(value, list) else None


def reason(kind: str) -> str:
    """Why the original prompt is used, for the person, in the active language."""
    seconds = settings.PROMPT_LLM_TIMEOUT_SECONDS
    if kind == llm.TIMEOUT:
        return ngettext(
            "The prompt helper did not answer within %(seconds)s second; your prompt is used as it is.",
            "The prompt helper did not answer within %(seconds)s seconds; your prompt is used as it is.",
            int(seconds) if float(seconds).is_integer() else 2,
        ) % {"seconds": f"{seconds:g}"}
    messages = {
        OFF: gettext("The prompt helper is not set up on this server; your prompt is used as it is."),
        llm.CONNECTION: gettext("The prompt helper could not be reached; your prompt is used as it is."),
        llm.RATE_LIMITED: gettext(
            "The prompt helper is busy (its service asked to slow down); your prompt is used as it is. "
            "Try again in a minute."
        ),
        llm.SERVER_ERROR: gettext("The prompt helper's service had an error; your prompt is used as it is."),
        llm.REJECTED: gettext(
            "The prompt helper's service refused the request (the server's settings may need a look); "
            "your prompt is used as it is."
        ),
        llm.CONTENT_FILTER: gettext("The prompt helper declined to rewrite this prompt; your prompt is used as it is."),
        REFUSED: gettext("The prompt helper declined to rewrite this prompt; your prompt is used as it is."),
        llm.MALFORMED: gettext("The prompt helper's answer could not be read; your prompt is used as it is."),
        llm.EMPTY: gettext("The prompt helper gave an empty answer; your prompt is used as it is."),
        TOO_LONG: gettext("The prompt helper's answer was far too long; your prompt is used as it is."),
    }
    return messages.get(kind, messages[llm.MALFORMED])
