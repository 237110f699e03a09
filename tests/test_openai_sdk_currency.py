"""The OpenAI flavour's model table against the installed official SDK (pinned in
requirements-test.txt): no default model may be one the SDK marks as deprecated or shut down,
and every model the SDK retires must be known here as retired, on the SDK's date.

The SDK says so in docstrings: the "Deprecated values:" list under the ImageModel literal
(openai/types/image_model.py) and under the `model` parameter of images.generate
(openai/types/image_generate_params.py), and prose such as "`gpt-image-1` was shut down on
October 23, 2026." When an SDK upgrade retires a default, this fails until the table moves on.
"""

from __future__ import annotations

import ast
import re
from datetime import date, datetime
from pathlib import Path
from typing import get_args

import openai
import pytest
from openai.types import image_generate_params, image_model

from generator.providers.flavors.openai import DEFAULT_MODELS, OPENAI_MODELS

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements-test.txt"
DATE = r"(?:January|February|March|April|May|June|July|August|September|October|November|December) \d{1,2}, \d{4}"
# One entry of a "Deprecated values:" list: - "id", "id": what happened, on which date.
BULLET = re.compile(r'^- ((?:"[^"]+"(?:, )?)+):(.*)$')
# Prose: `id` was shut down on October 23, 2026 / `id` will be retired on ...
PROSE = re.compile(rf"`([^`]+)` (?:was|were|is|are|will be) (?:shut down|retired|deprecated)(?: on ({DATE}))?")
RETIREMENT = re.compile(r"shut down|retired|deprecat|no longer", re.IGNORECASE)


def docstring_after(tree: ast.AST, target: str) -> str:
    """The string literal that follows the assignment or annotation of `target`."""
    for parent in ast.walk(tree):
        body = getattr(parent, "body", None)
        if not isinstance(body, list):
            continue
        for statement, following in zip(body, body[1:], strict=False):
            names = [getattr(t, "id", None) for t in getattr(statement, "targets", [])]
            names.append(getattr(getattr(statement, "target", None), "id", None))
            value = getattr(following, "value", None)
            if target in names and isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
    raise AssertionError(f"no docstring after {target}")


def sdk_notes() -> list[str]:
    """The docstrings that say which image models are deprecated."""
    model_tree = ast.parse(Path(image_model.__file__).read_text())
    params_tree = ast.parse(Path(image_generate_params.__file__).read_text())
    return [docstring_after(model_tree, "ImageModel"), docstring_after(params_tree, "model")]


def parse_date(text: str) -> date | None:
    found = re.search(DATE, text)
    return datetime.strptime(found.group(0), "%B %d, %Y").date() if found else None


def deprecations(notes: list[str]) -> dict[str, date | None]:
    """Model id -> the date the SDK gives for its shutdown (None when it names no date)."""
    found: dict[str, date | None] = {}
    for note in notes:
        entries: list[tuple[list[str], str]] = []
        for line in note.splitlines():
            bullet = BULLET.match(line.strip())
            if bullet:
                entries.append((re.findall(r'"([^"]+)"', bullet.group(1)), bullet.group(2)))
            elif entries and line.startswith("  ") and line.strip():
                entries[-1] = (entries[-1][0], f"{entries[-1][1]} {line.strip()}")
        for ids, text in entries:
            if RETIREMENT.search(text):
                for model in ids:
                    found[model] = found.get(model) or parse_date(text)
        for model, when in PROSE.findall(" ".join(note.split())):
            found[model] = found.get(model) or (parse_date(when) if when else None)
    return found


SDK_DEPRECATED = deprecations(sdk_notes())


def test_the_installed_sdk_is_the_pinned_one():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", REQUIREMENTS.read_text(), re.MULTILINE))
    assert openai.__version__ == pins["openai"]


def test_the_sdk_notes_are_still_read():
    # A changed docstring format must fail here, not let the checks below pass on nothing.
    notes = " ".join(sdk_notes())
    if "deprecated" in notes.lower() or "shut down" in notes.lower():
        assert SDK_DEPRECATED, "the SDK mentions deprecations this test no longer reads"
    assert deprecations(['Deprecated values:\n\n- "a", "b": Shut down on May 1, 2026. Use\n  c instead.\n']) == {
        "a": date(2026, 5, 1),
        "b": date(2026, 5, 1),
    }
    assert deprecations(["`old-model` was shut down on June 2, 2026. Use `new-model` instead."]) == {
        "old-model": date(2026, 6, 2)
    }


@pytest.mark.parametrize("model", DEFAULT_MODELS)
def test_no_default_model_is_deprecated_or_shut_down(model):
    assert model not in SDK_DEPRECATED, f"the openai SDK {openai.__version__} deprecates {model}"
    assert OPENAI_MODELS[model].shutdown is None


@pytest.mark.parametrize("model", DEFAULT_MODELS)
def test_every_default_model_is_one_the_sdk_names(model):
    assert model in get_args(image_model.ImageModel)


@pytest.mark.parametrize("model", sorted(SDK_DEPRECATED))
def test_every_model_the_sdk_retires_is_known_as_retired(model):
    spec = OPENAI_MODELS.get(model)
    assert spec is not None and spec.shutdown is not None, f"add {model} to the retired models"
    if SDK_DEPRECATED[model] is not None:
        assert spec.shutdown == SDK_DEPRECATED[model]


def test_the_flexible_size_rules_are_still_the_sdks():
    """The limits the form enforces for the current GPT image models, as the SDK documents them."""
    size = " ".join(docstring_after(ast.parse(Path(image_generate_params.__file__).read_text()), "size").split())
    assert "divisible by 16" in size and "between 1:3 and 3:1" in size
    assert "maximum supported resolution is `3840x2160`" in size
    info = OPENAI_MODELS["gpt-image-2"].info
    assert (info.size_multiple, info.max_aspect_ratio, info.max_size, info.max_pixels) == (16, 3, 3840, 3840 * 2160)
    n = " ".join(docstring_after(ast.parse(Path(image_generate_params.__file__).read_text()), "n").split())
    assert "between 1 and 10" in n and info.max_images == OPENAI_MODELS["gpt-image-2"].per_call == 10
