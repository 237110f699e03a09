"""The LLM prompt helper ("Improve", optimize_prompt), against a local server that speaks the
chat-completions API (tests/fake_llm.py), with the official `openai` client as the reference
for what a request looks like."""

from __future__ import annotations

import json
import logging
import time
from html import unescape
from html.parser import HTMLParser

import openai
import pytest
from django.urls import reverse
from django.utils import translation

from generator.models import Task
from prompts import helper, llm

from .fake_llm import Reply, completion, fake_llm_fixture, vendor_error  # noqa: F401  (the fixture)

GENERATE = "/api/v1/generate"
IMPROVE = "/prompts/improve"
PROMPT = "a lighthouse on a cliff at dawn"
SUGGESTION = "a lighthouse on a rocky cliff at dawn, oil painting, warm golden light"
CHINESE = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans,zh;q=0.9"}
HTMX = {"HTTP_HX_REQUEST": "true"}
CREATE_FIELDS = {"model": "offline:sketch-v1", "size": "512x512", "num_images": "1", "random_seed": "on"}
pytestmark = pytest.mark.usefixtures("ratelimit_clock")


def generate(client, **body):
    return client.post(GENERATE, json.dumps({"prompt": PROMPT, **body}), content_type="application/json")


def improve(client, prompt=PROMPT, **extra):
    return client.post(IMPROVE, {"prompt": prompt, **CREATE_FIELDS}, **extra)


class Fields(HTMLParser):
    """The fields of the first form posting to `action` on a page, as a browser would send them."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.done = action, False, False
        self.fields: dict[str, str] = {}
        self.textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("action") == self.action and not self.done:
            self.inside = True
        elif self.inside and tag == "input" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""
        elif self.inside and tag == "textarea":
            self.textarea = attrs["name"]
            self.fields[self.textarea] = ""

    def handle_data(self, data):
        if self.textarea:
            self.fields[self.textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self.textarea = None
        elif tag == "form" and self.inside:
            self.inside, self.done = False, True


def form_fields(html: str, action: str) -> dict[str, str]:
    parser = Fields(action)
    parser.feed(html)
    assert parser.done, f"no form posting to {action}"
    return parser.fields


# --- the request ---------------------------------------------------------------------------


def test_the_request_has_the_shape_the_official_openai_client_sends(fake_llm, settings):
    fake_llm.answer = SUGGESTION
    assert helper.improve(PROMPT) == helper.Suggestion(PROMPT, SUGGESTION)
    ours = fake_llm.requests[-1]
    client = openai.OpenAI(base_url=fake_llm.base_url, api_key=settings.PROMPT_LLM_API_KEY, max_retries=0)
    reply = client.chat.completions.create(
        model=ours.body["model"],
        messages=ours.body["messages"],
        temperature=ours.body["temperature"],
        max_tokens=ours.body["max_tokens"],
    )
    assert reply.choices[0].message.content == SUGGESTION  # the fake speaks the protocol the client reads
    reference = fake_llm.requests[-1]
    assert ours.path == reference.path == "/v1/chat/completions"
    assert ours.body == reference.body  # same keys, same values, same JSON types
    assert ours.headers["authorization"] == reference.headers["authorization"] == "Bearer sk-test-0123456789abcdef"
    assert ours.headers["content-type"] == reference.headers["content-type"] == "application/json"
    assert ours.body["model"] == "qwen-plus"
    system, user = ours.body["messages"]
    assert system["role"] == "system" and user == {"role": "user", "content": PROMPT}
    assert "same language as the user's prompt" in system["content"]
    assert "negative prompt" in system["content"].lower()


def test_no_authorization_header_without_a_key(fake_llm, settings):
    """A local Ollama or vLLM needs no key: none is sent."""
    settings.PROMPT_LLM_API_KEY = ""
    helper.improve(PROMPT)
    assert "authorization" not in fake_llm.requests[-1].headers


def test_english_is_asked_for_only_when_wanted(fake_llm):
    helper.improve("海边悬崖上的灯塔", english=True)
    system = fake_llm.requests[-1].body["messages"][0]["content"]
    assert "Write in English" in system and "same language" not in system


# --- the page: htmx ------------------------------------------------------------------------


def test_an_accepted_suggestion_makes_a_task_with_both_prompts(auth_client, user, fake_llm):
    fake_llm.answer = SUGGESTION
    panel = improve(auth_client, **HTMX)
    assert panel.status_code == 200
    html = panel.content.decode()
    # Beside the original, with the changes marked; nothing is generated yet.
    assert "<ins>rocky </ins>" in html and "<ins>, oil painting, warm golden light</ins>" in html
    assert f'data-suggestion="{SUGGESTION}"' in html and f'data-original="{PROMPT}"' in html
    assert 'data-suggestion-action="accept"' in html and 'data-suggestion-action="dismiss"' in html
    assert Task.objects.count() == 0
    # Accept: the suggestion in the prompt box, the original in the hidden field; then Generate.
    created = auth_client.post(
        reverse("generator:create"), {**CREATE_FIELDS, "prompt": SUGGESTION, "original_prompt": PROMPT}, **HTMX
    )
    assert created.status_code == 201
    task = Task.objects.get(owner=user)
    assert (task.prompt, task.original_prompt) == (SUGGESTION, PROMPT)
    data = auth_client.get(f"/api/v1/task/{task.pk}").json()
    assert (data["prompt"], data["original_prompt"]) == (SUGGESTION, PROMPT)


def test_the_original_is_kept_only_when_it_differs(auth_client, user):
    fields = {**CREATE_FIELDS, "prompt": PROMPT, "original_prompt": f" {PROMPT} "}
    assert auth_client.post(reverse("generator:create"), fields).status_code == 302
    task = Task.objects.get(owner=user)
    assert task.original_prompt == ""
    assert auth_client.get(f"/api/v1/task/{task.pk}").json()["original_prompt"] is None


def test_an_overlong_original_is_refused_and_nothing_made(auth_client):
    fields = {**CREATE_FIELDS, "prompt": PROMPT, "original_prompt": "x" * 2001}
    response = auth_client.post(reverse("generator:create"), fields)
    assert response.status_code == 400 and "2000" in response.content.decode()
    assert Task.objects.count() == 0


def test_the_suggestion_is_escaped(auth_client, fake_llm):
    fake_llm.answer = 'a <script>alert("x")</script> lighthouse'
    html = improve(auth_client, **HTMX).content.decode()
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_chinese_changes_are_marked_character_by_character(auth_client, fake_llm):
    fake_llm.answer = "海边悬崖上的白色灯塔，油画"
    html = improve(auth_client, "海边悬崖上的灯塔", **HTMX).content.decode()
    assert "<ins>白色</ins>" in html and "<ins>，油画</ins>" in html


def test_an_empty_prompt_is_explained_and_nothing_asked(auth_client, fake_llm):
    html = improve(auth_client, "   ", **HTMX).content.decode()
    assert "Write a prompt first" in html
    assert fake_llm.requests == []
    assert improve(auth_client, "x" * 2001, **HTMX).content.decode().count("2000") == 1


# --- the page without JavaScript: a step of its own ----------------------------------------


def test_without_javascript_the_suggestion_is_a_step_that_posts_to_the_create_page(auth_client, user, fake_llm):
    fake_llm.answer = SUGGESTION
    page = auth_client.get(reverse("generator:create")).content.decode()
    assert f'formaction="{IMPROVE}"' in page  # the no-JS Improve button (inside <noscript>)
    step = improve(auth_client)
    assert step.status_code == 200
    html = step.content.decode()
    assert "<ins>rocky </ins>" in html and Task.objects.count() == 0
    fields = form_fields(html, reverse("generator:create"))
    assert fields["prompt"] == SUGGESTION and fields["original_prompt"] == PROMPT
    assert {key: fields[key] for key in CREATE_FIELDS} == CREATE_FIELDS  # every other field carried
    fields["prompt"] = SUGGESTION + ", at night"  # edited before generating
    assert auth_client.post(reverse("generator:create"), fields).status_code == 302
    task = Task.objects.get(owner=user)
    assert (task.prompt, task.original_prompt, task.width) == (SUGGESTION + ", at night", PROMPT, 512)


def test_without_javascript_a_fallback_says_why_and_keeps_the_prompt(auth_client, user, fake_llm):
    fake_llm.script(Reply(status=500, body=vendor_error("boom", code="internal_error")))
    html = improve(auth_client).content.decode()
    assert "had an error; your prompt is used as it is" in html
    fields = form_fields(html, reverse("generator:create"))
    assert fields["prompt"] == PROMPT and "original_prompt" not in fields
    assert auth_client.post(reverse("generator:create"), fields).status_code == 302
    assert Task.objects.get(owner=user).original_prompt == ""


# --- each failure: the original prompt, the reason, no task lost ---------------------------

MESSAGES = {
    "timeout": "The prompt helper did not answer within 0.5 seconds; your prompt is used as it is.",
    "server_error": "The prompt helper's service had an error; your prompt is used as it is.",
    "rate_limited": "The prompt helper is busy (its service asked to slow down); your prompt is used as it is. "
    "Try again in a minute.",
    "malformed": "The prompt helper's answer could not be read; your prompt is used as it is.",
    "empty": "The prompt helper gave an empty answer; your prompt is used as it is.",
    "too_long": "The prompt helper's answer was far too long; your prompt is used as it is.",
    "refused": "The prompt helper declined to rewrite this prompt; your prompt is used as it is.",
    "rejected": "The prompt helper's service refused the request (the server's settings may need a look); "
    "your prompt is used as it is.",
}
TEN_TIMES_TOO_LONG = "word " * (helper.allowed_length(PROMPT) * 2)  # 10× the longest allowed
FAILURES = {
    "timeout": (Reply.content(SUGGESTION, delay=2), "timeout"),
    "trickled body": (Reply.content(SUGGESTION, trickle=0.05), "timeout"),
    "500": (Reply(status=500, body=vendor_error("The server had an error", code="internal_error")), "server_error"),
    "503 not JSON": (Reply(status=503, body=b"<html>Service Unavailable</html>"), "server_error"),
    "429": (Reply(status=429, body=vendor_error("Rate limit reached", code="rate_limit_exceeded")), "rate_limited"),
    "401": (Reply(status=401, body=vendor_error("Incorrect API key", code="invalid_api_key")), "rejected"),
    "malformed JSON": (Reply(body=b'{"choices": [{"message": {"content": "a lighth'), "malformed"),
    "not chat-completions": (Reply(body={"output": {"text": SUGGESTION}}), "malformed"),
    "no choices": (Reply(body={**completion(""), "choices": []}), "empty"),
    "empty content": (Reply.content(""), "empty"),
    "whitespace content": (Reply.content("  \n "), "empty"),
    "null content": (Reply.content(None), "empty"),
    "answer 10x too long": (Reply.content(TEN_TIMES_TOO_LONG), "too_long"),
    "refusal": (Reply.content("I'm sorry, but I can't help with that."), "refused"),
    "Chinese refusal": (Reply.content("抱歉，我无法协助处理这个请求。"), "refused"),
    "content_filter": (Reply.content("", finish_reason="content_filter"), "refused"),
    "DashScope data inspection": (
        Reply(
            status=400,
            body=vendor_error("Input data may contain inappropriate content.", code="data_inspection_failed"),
        ),
        "refused",
    ),
}


@pytest.mark.parametrize(("reply", "kind"), FAILURES.values(), ids=FAILURES.keys())
def test_each_failure_falls_back_to_the_original_and_makes_the_task(auth_client, user, fake_llm, settings, reply, kind):
    settings.PROMPT_LLM_TIMEOUT_SECONDS = 0.5
    fake_llm.script(reply)
    started = time.monotonic()
    response = generate(auth_client, optimize_prompt=True)
    assert time.monotonic() - started < 0.5 + 1.0  # the deadline holds, a trickled body included
    assert response.status_code == 201
    body = response.json()
    assert body["prompt_note"] == MESSAGES[kind]
    assert body["prompt"] == PROMPT and body["original_prompt"] is None
    task = Task.objects.get(owner=user, pk=body["task_id"])
    assert (task.prompt, task.original_prompt) == (PROMPT, "")
    assert len(fake_llm.requests) == 1  # asked once, never retried past the deadline


@pytest.mark.parametrize(
    ("reply", "kind"),
    [FAILURES["500"], FAILURES["refusal"], FAILURES["empty content"]],
    ids=["500", "refusal", "empty"],
)
def test_on_the_page_a_fallback_says_why_and_offers_nothing_to_accept(auth_client, fake_llm, reply, kind):
    fake_llm.script(reply)
    html = unescape(improve(auth_client, **HTMX).content.decode())
    assert MESSAGES[kind] in html and "data-suggestion-fallback" in html
    assert "data-suggestion-action" not in html


def test_the_reason_is_in_the_persons_language(auth_client, fake_llm, monkeypatch):
    """The reason goes through gettext in the request's language (the Chinese catalogue comes
    later: whatever it holds is what the person reads)."""
    seen = []

    def gettext(message):
        seen.append((translation.get_language(), message))
        return f"[{translation.get_language()}] {message}"

    monkeypatch.setattr(helper, "gettext", gettext)
    fake_llm.script(Reply(status=500, body=vendor_error("boom", code="internal_error")))
    body = auth_client.post(
        GENERATE, json.dumps({"prompt": PROMPT, "optimize_prompt": True}), content_type="application/json", **CHINESE
    ).json()
    assert body["prompt_note"] == f"[zh-hans] {MESSAGES['server_error']}"
    assert ("zh-hans", MESSAGES["server_error"]) in seen


def test_the_vendors_message_and_the_key_stay_out_of_the_answer(auth_client, fake_llm, settings, caplog):
    key = settings.PROMPT_LLM_API_KEY
    fake_llm.script(Reply(status=401, body=vendor_error(f"Incorrect API key provided: {key}", code="invalid_api_key")))
    with caplog.at_level(logging.DEBUG):
        body = generate(auth_client, optimize_prompt=True).json()
    assert body["prompt_note"] == MESSAGES["rejected"]
    assert "Incorrect API key provided" in caplog.text  # the operator sees the vendor's reason…
    assert key not in caplog.text and key not in json.dumps(body)  # …but never the key


# --- the API -------------------------------------------------------------------------------


def test_the_api_uses_the_suggestion_and_keeps_both_prompts(auth_client, user, fake_llm):
    fake_llm.answer = f"“{SUGGESTION}”\n\nNegative prompt: blurry, text"
    response = generate(auth_client, optimize_prompt=True)
    assert response.status_code == 201
    body = response.json()
    assert (body["prompt"], body["original_prompt"], body["prompt_note"]) == (SUGGESTION, PROMPT, None)
    task = Task.objects.get(owner=user)
    assert (task.prompt, task.original_prompt, task.negative_prompt) == (SUGGESTION, PROMPT, "")
    assert auth_client.get(f"/api/v1/task/{task.pk}").json()["original_prompt"] == PROMPT


def test_the_api_asks_for_english_with_prompt_language_en(auth_client, fake_llm):
    generate(auth_client, prompt="海边悬崖上的灯塔", optimize_prompt=True, prompt_language="en")
    assert "Write in English" in fake_llm.requests[-1].body["messages"][0]["content"]


def test_without_optimize_prompt_nothing_is_asked(auth_client, fake_llm):
    body = generate(auth_client).json()
    assert fake_llm.requests == [] and "prompt_note" not in body


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"optimize_prompt": "yes"}, "optimize_prompt"),
        ({"optimize_prompt": True, "prompt_language": "fr"}, "prompt_language"),
    ],
)
def test_bad_helper_options_are_refused_and_nothing_made(auth_client, fake_llm, options, field):
    response = generate(auth_client, **options)
    assert response.status_code == 400 and field in response.json()["details"]
    assert Task.objects.count() == 0 and fake_llm.requests == []


# --- the rate, per person ------------------------------------------------------------------


def test_the_helper_is_rate_limited_per_person(auth_client, other_client, user, fake_llm, settings, ratelimit_clock):
    settings.PROMPT_LLM_RATE = "2/m"
    ratelimit_clock.stop_before_window_end(str(user.pk), 60, 30)
    assert [improve(auth_client, **HTMX).status_code for _ in range(2)] == [200, 200]
    refused = improve(auth_client, **HTMX)
    assert refused.status_code == 429 and refused["Retry-After"] == "30"
    assert (
        "asking the prompt helper faster than this server allows. Try again in 30 seconds." in refused.content.decode()
    )
    assert len(fake_llm.requests) == 2
    # Generating through the API is never refused for it: the original is used, and why.
    body = generate(auth_client, optimize_prompt=True).json()
    assert body["prompt"] == PROMPT and "faster than this server allows" in body["prompt_note"]
    assert Task.objects.filter(owner=user).count() == 1 and len(fake_llm.requests) == 2
    assert improve(other_client, **HTMX).status_code == 200  # someone else's rate is their own


def test_without_javascript_over_the_rate_the_step_page_says_so(auth_client, fake_llm, settings):
    settings.PROMPT_LLM_RATE = "1/m"
    improve(auth_client)
    refused = improve(auth_client)
    assert refused.status_code == 429 and "faster than this server allows" in refused.content.decode()
    assert form_fields(refused.content.decode(), reverse("generator:create"))["prompt"] == PROMPT


# --- logs ----------------------------------------------------------------------------------


def test_prompts_are_not_logged_unless_log_prompts(auth_client, fake_llm, settings, caplog):
    settings.LOG_PROMPTS = False
    fake_llm.answer = SUGGESTION
    with caplog.at_level(logging.DEBUG):
        improve(auth_client, **HTMX)
        generate(auth_client, optimize_prompt=True)
        fake_llm.script(Reply.content("I'm sorry, I can't help with that."))
        generate(auth_client, optimize_prompt=True)
    assert caplog.records  # the calls are logged…
    assert "lighthouse" not in caplog.text and "I'm sorry" not in caplog.text  # …without the prompts
    assert settings.PROMPT_LLM_API_KEY not in caplog.text
    caplog.clear()
    settings.LOG_PROMPTS = True
    with caplog.at_level(logging.INFO):
        helper.improve(PROMPT)
    assert PROMPT in caplog.text and SUGGESTION in caplog.text


# --- the helper off ------------------------------------------------------------------------

OFF = "The prompt helper is not set up on this server; your prompt is used as it is."


@pytest.mark.parametrize("empty", ["PROMPT_LLM_BASE_URL", "PROMPT_LLM_MODEL"])
def test_with_the_helper_off_the_page_says_so_and_the_api_uses_the_original(
    auth_client, user, fake_llm, settings, empty
):
    setattr(settings, empty, "")
    page = auth_client.get(reverse("generator:create")).content.decode()
    assert "The prompt helper is not set up on this server." in page
    assert f'hx-post="{IMPROVE}"' not in page and 'formaction="/prompts/improve"' not in page
    assert OFF in improve(auth_client, **HTMX).content.decode()
    body = generate(auth_client, optimize_prompt=True).json()
    assert (body["prompt"], body["prompt_note"]) == (PROMPT, OFF)
    assert Task.objects.get(owner=user).original_prompt == ""
    assert fake_llm.requests == []
    assert helper.rewrites(PROMPT, 3) == helper.Rewrites(PROMPT, [], OFF)


def test_with_the_helper_on_the_page_offers_improve(auth_client, fake_llm):
    page = auth_client.get(reverse("generator:create")).content.decode()
    assert f'hx-post="{IMPROVE}"' in page and 'name="prompt_english"' in page
    assert "not set up" not in page


# --- rewrites (variant sets) ---------------------------------------------------------------


def test_rewrites_returns_n_distinct_prompts(fake_llm):
    variants = ["a lighthouse at dawn, watercolour", "a lighthouse at dawn, pixel art", "a lighthouse at dusk, photo"]
    fake_llm.answer = "```json\n" + json.dumps(variants + [variants[0], PROMPT], ensure_ascii=False) + "\n```"
    assert helper.rewrites(PROMPT, 3) == helper.Rewrites(PROMPT, variants)
    system = fake_llm.requests[-1].body["messages"][0]["content"]
    assert "JSON array of 3 strings" in system


def test_rewrites_reads_a_numbered_list_too(fake_llm):
    fake_llm.answer = "1. a lighthouse, watercolour\n2. a lighthouse, pixel art\n"
    assert helper.rewrites(PROMPT, 2).prompts == ["a lighthouse, watercolour", "a lighthouse, pixel art"]


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply.content(json.dumps([PROMPT, PROMPT, "one other"])), "empty"),  # fewer than two distinct
        (Reply.content(json.dumps(["x" * 5000, "y" * 5000])), "too_long"),
        (Reply.content("I'm sorry, I can't do that."), "refused"),
        FAILURES["429"],
        FAILURES["malformed JSON"],
    ],
    ids=["not distinct", "too long", "refusal", "429", "malformed"],
)
def test_rewrites_fall_back_with_a_reason(fake_llm, reply, kind):
    fake_llm.script(reply)
    assert helper.rewrites(PROMPT, 3) == helper.Rewrites(PROMPT, [], MESSAGES[kind])


# --- cleaning an answer --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "cleaned"),
    [
        (f'"{SUGGESTION}"', SUGGESTION),
        (f"Prompt: {SUGGESTION}", SUGGESTION),
        (f"```\n{SUGGESTION}\n```", SUGGESTION),
        (f"**Improved prompt:** {SUGGESTION}", SUGGESTION),
        (f"{SUGGESTION}\nNegative prompt: blurry, low quality", SUGGESTION),
        (f"{SUGGESTION}. Negative prompt: blurry", SUGGESTION),
        ("「海边的白色灯塔」", "海边的白色灯塔"),
        ("提示词：海边的白色灯塔\n反向提示词：模糊", "海边的白色灯塔"),
        ("a sorry-looking dog in the rain", "a sorry-looking dog in the rain"),  # not a refusal
    ],
)
def test_an_answer_is_cleaned(answer, cleaned):
    assert helper.clean(answer, limit=500) == cleaned


def test_the_length_limit_is_inclusive():
    limit = helper.allowed_length(PROMPT)
    assert helper.clean("w" * limit, limit=limit) == "w" * limit
    with pytest.raises(helper.Unusable):
        helper.clean("w" * (limit + 1), limit=limit)
    assert helper.allowed_length("猫") == helper.MIN_ALLOWED_LENGTH  # short prompts may grow
    assert helper.allowed_length("x" * 1500) == helper.MAX_SUGGESTION_LENGTH  # never past the form's limit


def test_llm_errors_have_a_kind_for_every_failure():
    for kind in llm.KINDS:
        assert helper.reason(kind).endswith(("as it is.", "in a minute."))
