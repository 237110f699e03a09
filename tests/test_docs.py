"""The documents name tests that really exist, so they stay true as the code moves."""

from __future__ import annotations

import re
from pathlib import Path

from generator.providers import dashscope, volcengine
from generator.providers.flavors import ark, openai, siliconflow

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_named_in_the_reliability_matrix_exists():
    text = (ROOT / "docs" / "RELIABILITY.md").read_text()
    references = re.findall(r"`([\w/]+\.py)::(test_\w+)`", text)
    assert len(references) > 30
    missing = [
        f"{path}::{name}" for path, name in references if f"def {name}(" not in (ROOT / "tests" / path).read_text()
    ]
    assert missing == []


def test_every_test_file_named_in_the_reliability_matrix_exists():
    text = (ROOT / "docs" / "RELIABILITY.md").read_text()
    files = set(re.findall(r"`((?:e2e/)?test_\w+\.py)", text))
    assert files and [name for name in files if not (ROOT / "tests" / name).is_file()] == []


def test_every_test_named_in_the_security_document_exists():
    text = (ROOT / "docs" / "SECURITY.md").read_text()
    files = set(re.findall(r"`((?:security/)?test_\w+\.py)", text))
    references = re.findall(r"`((?:security/)?test_\w+\.py)::(test_\w+)`", text)
    assert len(files) > 15 and len(references) > 5
    assert [name for name in files if not (ROOT / "tests" / name).is_file()] == []
    missing = [
        f"{path}::{name}" for path, name in references if f"def {name}(" not in (ROOT / "tests" / path).read_text()
    ]
    assert missing == []


def test_the_providers_document_names_every_model_each_provider_knows():
    """docs/PROVIDERS.md keeps up with the model tables: a model added (or made a default) in a
    provider module and not documented fails here."""
    text = (ROOT / "docs" / "PROVIDERS.md").read_text()
    current_openai = [model_id for model_id, spec in openai.OPENAI_MODELS.items() if not spec.is_shut_down()]
    known = [
        *openai.DEFAULT_MODELS,
        *current_openai,
        *ark.ARK_MODELS,
        *siliconflow.SILICONFLOW_MODELS,
        *dashscope.DEFAULT_MODELS,
        *dashscope.KNOWN_MODELS,
        *volcengine.DEFAULT_MODELS,
        *volcengine.KNOWN_MODELS,
    ]
    assert [model_id for model_id in known if f"`{model_id}`" not in text] == []
