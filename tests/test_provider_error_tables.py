"""Every row of every vendor's error table, sent as that vendor's own error body by a local
server, comes out of the provider as the kind and the message the table promises.

The modules' own tests pick the interesting cases (a code's wording, Retry-After, a finished
job); this file walks each table whole, so a row whose code the parser never reaches fails here.
"""

from __future__ import annotations

import pytest

from generator.providers import GenerationRequest, ProviderError
from generator.providers import dashscope as dashscope_module
from generator.providers import volcengine as volcengine_module
from generator.providers.errors import MESSAGES, Kind
from generator.providers.flavors import ark, openai, siliconflow
from generator.reasons import Reason

KEY = "sk-table-key"
GENERATIONS = "/v1/images/generations"

# The HTTP status a vendor sends with each kind of error, where its table names none.
STATUS_FOR_KIND = {
    Kind.TRANSIENT: 503,
    Kind.ACCOUNT: 403,
    Kind.CONTENT: 400,
    Kind.REQUEST: 400,
    Kind.PROVIDER: 500,
}


def shows(error: ProviderError, message) -> bool:
    """The error's reason is `message` (a catalogue entry), with or without the vendor's words."""
    msgid = Reason(message).msgid
    reason = error.reason
    return reason.msgid == msgid or Reason(reason.params.get("message", "")).msgid == msgid


def raised(call) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        call()
    return caught.value


@pytest.fixture
def compatible(configure_provider, httpserver):
    def configure(name: str, model: str, **values):
        defaults = {"API_KEY": KEY, "BASE_URL": httpserver.url_for("/v1"), "SELF_HOSTED": True, "MODELS": [model]}
        return configure_provider(name, **{**defaults, **values})

    return configure


# --- OpenAI: {"error": {"message", "type", "param", "code"}} ---------------------------------------

OPENAI_STATUS = {"rate_limited": 429, "quota_exhausted": 429, "model_not_found": 404, "authentication_failed": 401}


@pytest.mark.parametrize("vendor_code,key", list(openai.OPENAI_CODES.items()))
def test_every_openai_code(compatible, httpserver, vendor_code, key):
    code = key.partition(".")[0]
    status = (
        OPENAI_STATUS.get(code) or STATUS_FOR_KIND[Kind.TRANSIENT if code == "provider_unavailable" else Kind.REQUEST]
    )
    body = {
        "error": {"message": "The vendor's words.", "type": "invalid_request_error", "param": None, "code": vendor_code}
    }
    httpserver.expect_request(GENERATIONS).respond_with_json(body, status=status)
    provider = compatible("openai", "gpt-image-2")
    error = raised(
        lambda: provider.generate(GenerationRequest(prompt="p", model="gpt-image-2", width=1024, height=1024))
    )
    assert error.code == code and shows(error, MESSAGES[key])


# --- Ark: {"error": {"code", "message", "param", "type"}} with the table's own status -----------------


@pytest.mark.parametrize("row", ark.ARK_CODES, ids=lambda row: f"{row.code}{'-' + row.wording if row.wording else ''}")
def test_every_ark_code(compatible, httpserver, row):
    message = row.wording or "The vendor's words."
    body = {"error": {"code": row.code, "message": message, "param": "", "type": "BadRequest"}}
    httpserver.expect_request(GENERATIONS).respond_with_json(body, status=row.status)
    model = ark.SEEDREAM_5_PRO
    provider = compatible("ark", model)
    error = raised(lambda: provider.generate(GenerationRequest(prompt="p", model=model, width=2048, height=2048)))
    assert error.kind == row.kind
    assert shows(error, MESSAGES[row.key])


# --- SiliconFlow: {"code", "message", "data"} ----------------------------------------------------------


@pytest.mark.parametrize("row", siliconflow.SILICONFLOW_CODES, ids=lambda row: f"{row.code}-{row.status}-{row.key}")
def test_every_siliconflow_row(compatible, httpserver, row):
    status = row.status or STATUS_FOR_KIND[row.kind]
    message = row.words[0] if row.words else "The vendor's words."
    body = {"code": row.code if row.code is not None else status * 100, "message": message, "data": None}
    httpserver.expect_request(GENERATIONS).respond_with_json(body, status=status)
    model = siliconflow.KOLORS
    provider = compatible("siliconflow", model)
    error = raised(lambda: provider.generate(GenerationRequest(prompt="p", model=model, width=1024, height=1024)))
    assert error.kind == row.kind
    assert shows(error, MESSAGES[row.key])


# --- DashScope: {"request_id", "code", "message"} on the job submission ----------------------------------

DASHSCOPE_ROWS = [
    (vendor_code.rstrip("*") + ("Sub" if vendor_code.endswith("*") else ""), row)
    for row in dashscope_module.ERROR_TABLE
    for vendor_code in row.codes
]


@pytest.mark.parametrize("vendor_code,row", DASHSCOPE_ROWS, ids=[f"{code}-{row.key}" for code, row in DASHSCOPE_ROWS])
def test_every_dashscope_code(configure_provider, httpserver, vendor_code, row):
    message = row.message.capitalize() + "." if row.message else "The vendor's words."
    body = {"request_id": "req-1", "code": vendor_code, "message": message}
    submit = "/api/v1/services/aigc/text2image/image-synthesis"
    httpserver.expect_request(submit).respond_with_json(body, status=STATUS_FOR_KIND[row.kind])
    provider = configure_provider(
        "dashscope", API_KEY=KEY, BASE_URL=httpserver.url_for("/api/v1"), MODELS=["wan2.2-t2i-flash"]
    )
    request = GenerationRequest(prompt="p", model="wan2.2-t2i-flash", width=1024, height=1024)
    error = raised(lambda: provider.submit(request, lambda state: None))
    assert error.kind == row.kind
    assert error.request_id == "req-1"
    assert shows(error, MESSAGES[row.key])


# --- VolcEngine visual API: the service envelope {"code", ...} and the gateway's ResponseMetadata.Error ---


def volcengine_answer(code: int | str, status: int) -> dict:
    if isinstance(code, int):
        return {"code": code, "data": None, "message": "The vendor's words.", "request_id": "req-1", "status": code}
    metadata = {"RequestId": "req-1", "Action": "CVProcess", "Version": "2022-08-31", "Service": "cv"}
    return {"ResponseMetadata": {**metadata, "Region": "cn-north-1", "Error": {"Code": code, "Message": "refused"}}}


@pytest.mark.parametrize("code", list(volcengine_module.ERROR_TABLE))
def test_every_volcengine_code(configure_provider, httpserver, code):
    row = volcengine_module.ERROR_TABLE[code]
    status = 429 if code in (50429, 50430, "FlowLimitExceeded") else STATUS_FOR_KIND[row.kind]
    httpserver.expect_request("/").respond_with_json(volcengine_answer(code, status), status=status)
    provider = configure_provider(
        "volcengine",
        ACCESS_KEY="ak",
        SECRET_KEY="sk",
        BASE_URL=httpserver.url_for("/"),
        SELF_HOSTED=True,
        MODELS=["high_aes_general_v21_L"],
    )
    request = GenerationRequest(prompt="p", model="high_aes_general_v21_L", width=512, height=512)
    error = raised(lambda: provider.generate(request))
    if row.outcome_unknown:  # a paid call the vendor may have carried out is never sent again
        assert (error.kind, error.code) == (Kind.PROVIDER, "timeout")
        assert shows(error, MESSAGES["timeout.outcome_unknown"])
        return
    assert error.kind == row.kind
    assert shows(error, row.message or MESSAGES[row.key])
