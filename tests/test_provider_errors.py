"""The providers' one catalogue of error messages, and the request built from a task.

Import order and cycles are tests/test_layout.py's.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import translation

from generator.providers import GenerationRequest, PermanentProviderError, ProviderError, TransientProviderError
from generator.providers.errors import MESSAGES, code_of
from generator.reasons import Reason

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "generator" / "providers"
MODULES = {path.stem: ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.glob("*.py"))}


def translatable_strings(tree: ast.AST) -> list[str]:
    """The literal first argument of every _(...) call."""
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]


def test_no_message_is_written_twice_in_the_providers():
    counts = Counter(text for tree in MODULES.values() for text in translatable_strings(tree))
    assert [text for text, count in counts.items() if count > 1] == []


def test_the_shared_messages_live_only_in_the_catalogue():
    catalogue = set(translatable_strings(MODULES["errors"]))
    assert catalogue == {Reason(message).msgid for message in MESSAGES.values()}
    # What stays in a provider's module is about that vendor alone, never the generic wording.
    for name, tree in MODULES.items():
        if name != "errors":
            assert not catalogue & set(translatable_strings(tree)), name


def test_every_catalogue_message_is_translated():
    with translation.override("zh-hans"):
        untranslated = [key for key, message in MESSAGES.items() if str(message) == Reason(message).msgid]
    assert untranslated == []


@pytest.mark.parametrize(
    "key,code", [("rate_limited", "rate_limited"), ("rate_limited.http_429", "rate_limited"), ("timeout", "timeout")]
)
def test_a_catalogue_key_names_its_error_code(key, code):
    assert key in MESSAGES and code_of(key) == code


def test_the_error_classes_are_the_packages():
    assert issubclass(TransientProviderError, ProviderError) and TransientProviderError.transient
    assert issubclass(PermanentProviderError, ProviderError) and not PermanentProviderError.transient


# --- the request -------------------------------------------------------------------------------


def test_a_request_is_built_from_anything_shaped_like_a_task():
    task = SimpleNamespace(
        prompt="a red fox",
        negative_prompt="blur",
        model="sketch-v1",
        width=512,
        height=768,
        num_images=2,
        steps=None,
        guidance_scale=7.5,
        seed=42,
        provider="offline",
    )
    assert GenerationRequest.from_task(task) == GenerationRequest(
        prompt="a red fox",
        negative_prompt="blur",
        model="sketch-v1",
        width=512,
        height=768,
        num_images=2,
        steps=None,
        guidance_scale=7.5,
        seed=42,
    )
