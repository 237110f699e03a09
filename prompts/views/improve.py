"""The prompt helper on the create page ("Improve").

With htmx the suggestion panel under the prompt is filled in (prompts/_suggestion.html): the
suggestion beside the original with the changes marked, to accept, edit or dismiss. Without
JavaScript the Improve button posts the whole create form here and a step page of its own
shows the suggestion in a form carrying every other field, which posts to the create page.
Nothing is generated here.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlencode

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from generator import limits
from generator.forms import INVISIBLE_CATEGORIES, MAX_PROMPT_LENGTH
from generator.views.create import FORM_FIELDS_FROM_QUERY

from .. import diff
from ..helper import Suggestion
from ..suggest import suggestion_for

# Fields of the create form that the step page does not carry over as they came.
NOT_CARRIED = {"csrfmiddlewaretoken", "prompt", "original_prompt", "prompt_english", "improve"}


class ImproveForm(forms.Form):
    prompt = forms.CharField(max_length=MAX_PROMPT_LENGTH)
    prompt_english = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["prompt"].error_messages.update(
            {
                "required": gettext("Write a prompt first; the helper improves what you wrote."),
                "max_length": gettext("Keep the prompt under %(max)s characters.") % {"max": MAX_PROMPT_LENGTH},
            }
        )

    def clean_prompt(self) -> str:
        prompt = self.cleaned_data["prompt"].strip()
        if not prompt or all(unicodedata.category(char) in INVISIBLE_CATEGORIES for char in prompt):
            raise forms.ValidationError(gettext("Write a prompt first; the helper improves what you wrote."))
        return prompt


@require_POST
def improve(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ImproveForm(request.POST)
    if not form.is_valid():
        problem = " ".join(str(message) for messages in form.errors.values() for message in messages)
        return _answer(request, {"problem": problem}, status=400)
    prompt = form.cleaned_data["prompt"]
    try:
        suggestion = suggestion_for(request, prompt, english=form.cleaned_data["prompt_english"])
    except limits.RateExceeded as refused:
        response = _answer(request, {"problem": refused.exceeded.message, "prompt": prompt}, status=429)
        response["Retry-After"] = str(refused.exceeded.retry_after)
        return response
    return _answer(request, _suggestion_context(suggestion))


def _suggestion_context(suggestion: Suggestion) -> dict:
    context: dict = {"suggestion": suggestion, "prompt": suggestion.original}
    if not suggestion.fell_back:
        context["comparison"] = diff.compare(suggestion.original, suggestion.prompt)
    return context


def _answer(request: AuthenticatedHttpRequest, context: dict, *, status: int = 200) -> HttpResponse:
    if request.htmx:
        # htmx 2 swaps 2xx and 429 only (base.html): a bad prompt shows in the panel too.
        return render(request, "prompts/_suggestion.html", context, status=200 if status == 400 else status)
    prompt = context.get("prompt", request.POST.get("prompt", ""))
    carried = [
        (name, value) for name in request.POST if name not in NOT_CARRIED for value in request.POST.getlist(name)
    ]
    back = {name: request.POST[name] for name in FORM_FIELDS_FROM_QUERY if request.POST.get(name)}
    back["prompt"] = prompt
    context = {**context, "carried": carried, "back_query": urlencode(back)}
    return render(request, "prompts/improve.html", context, status=status)
