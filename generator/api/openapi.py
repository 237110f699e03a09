"""The OpenAPI 3 document for /api/v1, served at /api/v1/openapi.json.

tests/test_openapi.py checks every operation against the running app with schemathesis, so
this document and the API cannot drift apart.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse

from .. import limits

ERROR = {"$ref": "#/components/schemas/Error"}
RATE_LIMITED = {"$ref": "#/components/schemas/RateLimited"}
UUID = {"type": "string", "format": "uuid"}
DATETIME = {"type": "string", "format": "date-time"}
NULLABLE_DATETIME = {**DATETIME, "nullable": True}
ESTIMATED_TIME = {
    "type": "number",
    "nullable": True,
    "minimum": 0,
    "description": "Seconds a task on this provider and model usually takes from start to finish (the median "
    "of the recent completed ones); null when there is no history yet, and once the task has finished.",
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    """The error answers of an operation; every signed-in operation may answer 429 (API_RATE)."""
    statuses = tuple(sorted({*statuses, 429}))
    described = {
        400: "Invalid input, with a message per field",
        401: "Not signed in",
        403: "CSRF token missing",
        404: "No such object, or another person's",
        405: "Method not allowed",
        409: "The task has already finished",
        413: "Body too large",
        422: "The Idempotency-Key was used in the last 24 hours for a different request (`idempotency_key_reused`)",
        429: "Over a limit (API_RATE, or generating's own limits; `reason` says which); see Retry-After",
    }
    return {str(status): _json(RATE_LIMITED if status == 429 else ERROR, described[status]) for status in statuses}


def _path_id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": UUID}


def _path_int(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    "description": (
        "Any 1 to 255 printable ASCII characters (a UUID is typical; a quoted string is unquoted). "
        "Per person; stands for its task for 24 hours."
    ),
}
PAGE_PARAMETERS = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "Results per page (default 20)."),
    _query("cursor", {"type": "string"}, "The `next` value of the previous page."),
]
TASK_FILTERS = [
    _query(
        "status",
        {"type": "string", "enum": ["pending", "processing", "retrying", "completed", "failed", "canceled"]},
        "Only tasks in this status.",
    ),
    _query("q", {"type": "string"}, "Words in the prompt or negative prompt."),
]


def _page_of(item: str) -> dict:
    return {
        "type": "object",
        "required": ["results", "next"],
        "properties": {
            "results": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
            "next": {"type": "string", "nullable": True},
        },
    }


COUNTS = {
    "like_count": {"type": "integer", "minimum": 0},
    "favourite_count": {"type": "integer", "minimum": 0},
    "view_count": {"type": "integer", "minimum": 0, "description": "People who opened it, once a day each."},
    "download_count": {"type": "integer", "minimum": 0},
}
TITLE = {"type": "string", "maxLength": 120}
SHARING_SCHEMAS = {
    "PublishRequest": {
        "type": "object",
        "description": "Every field is optional; one left out keeps its value (at first: no title, prompt shown).",
        "properties": {
            "title": TITLE,
            "show_prompt": {"type": "boolean", "description": "Show the prompt and settings on Explore."},
        },
    },
    "Publication": {
        "type": "object",
        "required": ["id", "image_id", "title", "show_prompt", "published_at", *COUNTS, "hidden", "hidden_reason"],
        "properties": {
            "id": UUID,
            "image_id": UUID,
            "title": {"type": "string"},
            "show_prompt": {"type": "boolean"},
            "published_at": DATETIME,
            **COUNTS,
            "hidden": {"type": "boolean", "description": "Staff took it off Explore; the reason says why."},
            "hidden_reason": {"type": "string", "nullable": True},
        },
    },
    "ExploreItem": {
        "type": "object",
        "required": [
            "id",
            "title",
            "author",
            "provider",
            "model",
            "prompt",
            "width",
            "height",
            "published_at",
            *COUNTS,
            "liked",
            "favourited",
            "url",
            "thumbnail_url",
        ],
        "properties": {
            "id": {**UUID, "description": "The publication's id (not the image's)."},
            "title": {"type": "string"},
            "author": {"type": "string", "description": "The author's username."},
            "provider": {"type": "string"},
            "model": {"type": "string"},
            "prompt": {"type": "string", "nullable": True, "description": "null when the author keeps it."},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "published_at": DATETIME,
            **COUNTS,
            "liked": {"type": "boolean", "description": "Whether you like it."},
            "favourited": {"type": "boolean", "description": "Whether it is in your favourites."},
            "url": {"type": "string", "description": "The original (`?download=1` counts a download)."},
            "thumbnail_url": {"type": "string"},
        },
    },
    "ExplorePage": _page_of("ExploreItem"),
    "ShareLinkRequest": {
        "type": "object",
        "required": ["image_ids"],
        "properties": {
            "image_ids": {
                "type": "array",
                "items": UUID,
                "minItems": 1,
                "maxItems": 100,
                "description": "Your images, in the order shown; repeats count once.",
            },
            "title": TITLE,
            "show_prompt": {"type": "boolean", "description": "Default true."},
            "expires_in_days": {
                "type": "integer",
                "enum": [1, 7, 30],
                "nullable": True,
                "description": "null or left out: until revoked.",
            },
        },
    },
    "ShareLink": {
        "type": "object",
        "required": [
            "id",
            "title",
            "show_prompt",
            "prefix",
            "image_ids",
            "created_at",
            "expires_at",
            "revoked_at",
            "active",
            "view_count",
        ],
        "properties": {
            "id": UUID,
            "title": {"type": "string"},
            "show_prompt": {"type": "boolean"},
            "prefix": {"type": "string", "description": "The start of its secret, to tell links apart."},
            "image_ids": {"type": "array", "items": UUID},
            "created_at": DATETIME,
            "expires_at": NULLABLE_DATETIME,
            "revoked_at": NULLABLE_DATETIME,
            "active": {"type": "boolean", "description": "Opens now: not revoked, not expired."},
            "view_count": {"type": "integer", "minimum": 0},
        },
    },
    "NewShareLink": {
        "allOf": [
            {"$ref": "#/components/schemas/ShareLink"},
            {
                "type": "object",
                "required": ["url"],
                "properties": {
                    "url": {
                        "type": "string",
                        "description": "The link to give out. Shown in this answer only: only its hash is stored.",
                    }
                },
            },
        ]
    },
    "ShareLinkPage": _page_of("ShareLink"),
}

COMPONENTS = {
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                "retry_after": {"type": "integer"},
            },
        },
        "RateLimited": {
            "type": "object",
            "required": ["error", "message", "retry_after", "reason"],
            "properties": {
                "error": {"type": "string", "enum": ["rate_limit_exceeded"]},
                "message": {"type": "string"},
                "retry_after": {"type": "integer", "minimum": 1},
                "reason": {
                    "type": "string",
                    "enum": [
                        limits.TOO_MANY_QUEUED_TASKS,
                        limits.GENERATE_RATE,
                        limits.API_RATE,
                        limits.QUOTA_EXCEEDED,
                    ],
                    "description": "Which limit: too_many_queued_tasks (MAX_QUEUED_TASKS_PER_USER tasks waiting), "
                    "generate_rate (GENERATE_RATE), api_rate (API_RATE), quota_exceeded (a quota of images per "
                    "day or month, or of spend per month; the message says which).",
                },
                "resets_at": {
                    **DATETIME,
                    "description": "Only with quota_exceeded: when the quota that refused resets (the day's or "
                    "month's start in the server's time zone).",
                },
            },
        },
        "Quota": {
            "type": "object",
            "required": ["used", "max", "resets_at"],
            "description": "Images asked for by your tasks created in the period that are waiting, running or "
            "completed (failed and canceled ones do not count); max null: no limit. Past it, generating "
            "answers 429 quota_exceeded.",
            "properties": {
                "used": {"type": "integer", "minimum": 0},
                "max": {"type": "integer", "minimum": 0, "nullable": True},
                "resets_at": DATETIME,
            },
        },
        "SpendQuota": {
            "type": "object",
            "required": ["used", "max", "currency", "resets_at"],
            "description": "This month's recorded cost of completed tasks plus the expected cost of running "
            "ones, in the server's reporting currency; max null: no limit.",
            "properties": {
                "used": {"type": "number", "minimum": 0},
                "max": {"type": "number", "minimum": 0, "nullable": True},
                "currency": {"type": "string", "minLength": 3, "maxLength": 3},
                "resets_at": DATETIME,
            },
        },
        "Usage": {
            "type": "object",
            "required": ["rate", "used", "resets_in"],
            "properties": {
                "rate": {"type": "string"},
                "used": {"type": "integer"},
                "resets_in": {"type": "number", "nullable": True},
            },
        },
        "SystemInfo": {
            "type": "object",
            "required": ["version", "providers", "limits"],
            "properties": {
                "version": {"type": "string"},
                "providers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "label", "is_sketch", "concurrency", "rate", "in_flight", "queued"],
                        "properties": {
                            "name": {"type": "string"},
                            "label": {"type": "string"},
                            "is_sketch": {"type": "boolean"},
                            "concurrency": {
                                "type": "integer",
                                "minimum": 1,
                                "description": "Calls this server sends the provider at once (<PREFIX>CONCURRENCY).",
                            },
                            "rate": {
                                "type": "string",
                                "nullable": True,
                                "description": "Calls allowed per window, e.g. 10/m (<PREFIX>RATE); null: no limit.",
                            },
                            "in_flight": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "Everyone's tasks generating at the provider now.",
                            },
                            "queued": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "Everyone's tasks waiting for it (pending or retrying).",
                            },
                        },
                    },
                },
                "limits": {
                    "type": "object",
                    "required": [
                        "images_per_day",
                        "images_per_month",
                        "spend_per_month",
                        "queued_tasks",
                        "generate_rate",
                        "api_rate",
                    ],
                    "properties": {
                        "images_per_day": {"$ref": "#/components/schemas/Quota"},
                        "images_per_month": {"$ref": "#/components/schemas/Quota"},
                        "spend_per_month": {"$ref": "#/components/schemas/SpendQuota"},
                        "queued_tasks": {
                            "type": "object",
                            "required": ["used", "max"],
                            "description": "Your tasks waiting to run (pending or retrying) and the most allowed "
                            "(MAX_QUEUED_TASKS_PER_USER); at the maximum, generating answers 429 "
                            "too_many_queued_tasks.",
                            "properties": {"used": {"type": "integer"}, "max": {"type": "integer"}},
                        },
                        "generate_rate": {"$ref": "#/components/schemas/Usage"},
                        "api_rate": {"$ref": "#/components/schemas/Usage"},
                    },
                },
            },
        },
        "GenerateRequest": {
            "type": "object",
            "required": ["prompt"],
            "properties": {
                "prompt": {"type": "string", "minLength": 1, "maxLength": 2000},
                "negative_prompt": {"type": "string", "maxLength": 2000},
                "provider": {"type": "string"},
                "model": {"type": "string"},
                "width": {"type": "integer", "minimum": 1},
                "height": {"type": "integer", "minimum": 1},
                "num_images": {"type": "integer", "minimum": 1, "maximum": 4},
                "steps": {"type": "integer", "minimum": 1, "maximum": 150},
                "scale": {"type": "number", "minimum": 0, "maximum": 30},
                "seed": {"type": "integer", "minimum": -1, "maximum": 9999999999},
                "preset": {
                    "type": "integer",
                    "description": "A style preset's id (GET /api/v1/presets): the prompt goes into its template, "
                    "its negative prompt is added after yours, and its model, size, steps and guidance apply "
                    "to the fields this body leaves out. Another person's preset: 400 `No such preset.`",
                },
                "optimize_prompt": {
                    "type": "boolean",
                    "description": "Have the prompt helper (an LLM, PROMPT_LLM_*) improve the prompt first; the task "
                    "keeps both (`original_prompt`). On any failure of the helper (off, timeout, an error, an empty, "
                    "overlong or refused answer, PROMPT_LLM_RATE) the task is made with the prompt as sent and "
                    "`prompt_note` says why.",
                },
                "prompt_language": {
                    "type": "string",
                    "enum": ["en"],
                    "description": 'With optimize_prompt: "en" has the helper write English; left out, it keeps '
                    "the prompt's language.",
                },
            },
        },
        "Created": {
            "type": "object",
            "required": ["task_id", "status", "created_at", "estimated_time"],
            "properties": {
                "task_id": UUID,
                "status": {"type": "string"},
                "created_at": DATETIME,
                "estimated_time": ESTIMATED_TIME,
                "prompt": {"type": "string", "description": "Only with optimize_prompt: the prompt the task uses."},
                "original_prompt": {
                    "type": "string",
                    "nullable": True,
                    "description": "Only with optimize_prompt: the prompt as sent, when the helper's is used; "
                    "else null.",
                },
                "prompt_note": {
                    "type": "string",
                    "nullable": True,
                    "description": "Only with optimize_prompt: why the prompt as sent is used (in the request's "
                    "language), or null when the helper's prompt is used.",
                },
            },
        },
        "Image": {
            "type": "object",
            "required": ["image_id", "url", "thumbnail_url", "width", "height", "file_size", "seed"],
            "properties": {
                "image_id": UUID,
                "url": {"type": "string"},
                "thumbnail_url": {"type": "string"},
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "file_size": {"type": "integer"},
                "seed": {"type": "integer", "nullable": True},
                "task_id": UUID,
                "prompt": {"type": "string"},
                "is_favorite": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "created_at": DATETIME,
            },
        },
        "Task": {
            "type": "object",
            "required": [
                "task_id",
                "status",
                "progress",
                "prompt",
                "negative_prompt",
                "provider",
                "model",
                "width",
                "height",
                "num_images",
                "seed",
                "images",
                "error",
                "created_at",
                "started_at",
                "completed_at",
                "estimated_time",
                "preset",
            ],
            "properties": {
                "task_id": UUID,
                "status": {"type": "string"},
                "progress": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 100,
                    "description": "How far the task is: the provider's own progress where it reports it "
                    "(the WebUI's sampling steps, a vendor job's state, the offline sketch per picture).",
                },
                "prompt": {"type": "string"},
                "original_prompt": {
                    "type": "string",
                    "nullable": True,
                    "description": "The prompt as typed when the prompt helper (optimize_prompt) or a style preset "
                    "changed it; null when `prompt` is as typed.",
                },
                "negative_prompt": {"type": "string"},
                "provider": {"type": "string"},
                "model": {"type": "string"},
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "num_images": {"type": "integer"},
                "steps": {"type": "integer", "nullable": True},
                "guidance_scale": {"type": "number", "nullable": True},
                "seed": {"type": "integer", "nullable": True},
                "images": {"type": "array", "items": {"$ref": "#/components/schemas/Image"}},
                "error": {
                    "type": "object",
                    "nullable": True,
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                },
                "created_at": DATETIME,
                "started_at": NULLABLE_DATETIME,
                "completed_at": NULLABLE_DATETIME,
                "estimated_time": ESTIMATED_TIME,
                "preset": {
                    "type": "object",
                    "nullable": True,
                    "required": ["id", "name"],
                    "description": "The style preset applied, or null; `id` is null once the preset is deleted.",
                    "properties": {"id": {"type": "integer", "nullable": True}, "name": {"type": "string"}},
                },
            },
        },
        "Preset": {
            "type": "object",
            "required": [
                "id",
                "name",
                "owner",
                "prompt_template",
                "negative_prompt",
                "model",
                "width",
                "height",
                "steps",
                "guidance_scale",
                "preview_thumbnail_url",
            ],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string", "description": "In the request's language where it has one."},
                "owner": {"type": "string", "enum": ["you", "staff"]},
                "prompt_template": {"type": "string", "description": "Where {prompt} stands, your prompt goes."},
                "negative_prompt": {"type": "string"},
                "model": {"type": "string", "nullable": True, "description": "provider:model"},
                "width": {"type": "integer", "nullable": True},
                "height": {"type": "integer", "nullable": True},
                "steps": {"type": "integer", "nullable": True},
                "guidance_scale": {"type": "number", "nullable": True},
                "preview_thumbnail_url": {"type": "string", "nullable": True},
            },
        },
        "VariantsRequest": {
            "description": "The generate body plus either `presets` (the same prompt under each preset) or "
            "`rewrites` (that many rewrites of the prompt by the prompt helper: Surprise me).",
            "allOf": [
                {"$ref": "#/components/schemas/GenerateRequest"},
                {
                    "type": "object",
                    "properties": {
                        "presets": {
                            "type": "array",
                            "items": {"type": "integer"},
                            "minItems": 2,
                            "maxItems": 6,
                            "uniqueItems": True,
                            "description": "Ids of presets you may use (staff's and your own).",
                        },
                        "rewrites": {"type": "integer", "minimum": 2, "maximum": 6},
                    },
                },
            ],
        },
        "VariantSet": {
            "type": "object",
            "required": ["variant_set_id", "mode", "prompt", "created_at", "kept_task_id", "tasks"],
            "properties": {
                "variant_set_id": {"type": "integer"},
                "mode": {"type": "string", "enum": ["presets", "rewrites"]},
                "prompt": {"type": "string", "description": "The idea the variants share."},
                "created_at": DATETIME,
                "kept_task_id": {**UUID, "nullable": True, "description": "The task kept; null: none yet."},
                "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
            },
        },
        "TaskPage": _page_of("Task"),
        "ImagePage": _page_of("Image"),
        **SHARING_SCHEMAS,
    },
    "securitySchemes": {
        "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
        "bearer": {"type": "http", "scheme": "bearer"},
    },
}

BINARY = {"type": "string", "format": "binary"}
IMAGE_FILE = {
    "200": {"description": "The file", "content": {"image/png": {"schema": BINARY}, "image/webp": {"schema": BINARY}}},
    "302": {"description": "A short-lived signed link to the file (object storage)"},
    "304": {"description": "Not modified (ETag)"},
    **_errors(401, 404),
}


def document() -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Atelier API", "version": settings.ATELIER_VERSION},
        "servers": [{"url": "/"}],
        "security": [{"session": []}, {"bearer": []}],
        "components": COMPONENTS,
        "paths": {
            "/api/v1/generate": {
                "post": {
                    "operationId": "generate",
                    "description": (
                        "Only a task really made counts against GENERATE_RATE. With an Idempotency-Key, "
                        "the same key from the same person within 24 hours answers with the task it made "
                        "(201 again, with `Idempotent-Replayed: true`) and makes no other; the same key with "
                        "a different body is refused (422). A refused request does not use up its key; "
                        "deleting the task frees it."
                    ),
                    "parameters": [IDEMPOTENCY_KEY],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GenerateRequest"}}},
                    },
                    "responses": {
                        "201": {
                            **_json({"$ref": "#/components/schemas/Created"}, "Task created, or the key's task"),
                            "headers": {
                                "Idempotent-Replayed": {
                                    "description": "`true` when the Idempotency-Key's earlier task is answered",
                                    "schema": {"type": "string", "enum": ["true"]},
                                }
                            },
                        },
                        **_errors(400, 401, 403, 413, 422, 429),
                    },
                }
            },
            "/api/v1/task/{task_id}": {
                "parameters": [_path_id("task_id")],
                "get": {
                    "operationId": "getTask",
                    "responses": {"200": _json({"$ref": "#/components/schemas/Task"}, "The task"), **_errors(401, 404)},
                },
                "delete": {
                    "operationId": "deleteTask",
                    "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404)},
                },
            },
            "/api/v1/task/{task_id}/cancel": {
                "parameters": [_path_id("task_id")],
                "post": {
                    "operationId": "cancelTask",
                    "description": "Stop a task that has not finished: it is canceled at once; a generation "
                    "running for it is interrupted where the provider allows (the WebUI), a vendor job is "
                    "canceled, and nothing it makes is kept.",
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Task"}, "The task, canceled"),
                        **_errors(401, 403, 404, 409),
                    },
                },
            },
            "/api/v1/tasks": {
                "get": {
                    "operationId": "listTasks",
                    "parameters": TASK_FILTERS + PAGE_PARAMETERS,
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/TaskPage"}, "A page of tasks"),
                        **_errors(400, 401),
                    },
                }
            },
            "/api/v1/history": {
                "get": {
                    "operationId": "listHistory",
                    "parameters": TASK_FILTERS + PAGE_PARAMETERS,
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/TaskPage"}, "Finished tasks"),
                        **_errors(400, 401),
                    },
                }
            },
            "/api/v1/history/{task_id}": {
                "parameters": [_path_id("task_id")],
                "delete": {
                    "operationId": "deleteHistoryEntry",
                    "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404)},
                },
            },
            "/api/v1/images": {
                "get": {
                    "operationId": "listImages",
                    "parameters": [
                        _query("tag", {"type": "string"}, "Only images with this tag."),
                        _query("favorite", {"type": "string", "enum": ["true", "false"]}, "Only (non-)favourites."),
                        *PAGE_PARAMETERS,
                    ],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/ImagePage"}, "A page of images"),
                        **_errors(400, 401),
                    },
                }
            },
            "/api/v1/images/{image_id}": {
                "parameters": [
                    _path_id("image_id"),
                    _query("download", {"type": "string"}, "Any value: send as an attachment."),
                ],
                "get": {"operationId": "getImageFile", "responses": IMAGE_FILE},
            },
            "/api/v1/images/{image_id}/thumbnail": {
                "parameters": [_path_id("image_id")],
                "get": {"operationId": "getThumbnail", "responses": IMAGE_FILE},
            },
            "/api/v1/presets/{preset_id}/preview": {
                "parameters": [_path_int("preset_id")],
                "get": {
                    "operationId": "getPresetPreview",
                    "description": "The preset's preview thumbnail, for anyone who may use the preset.",
                    "responses": IMAGE_FILE,
                },
            },
            "/api/v1/images/{image_id}/tags": {
                "parameters": [_path_id("image_id")],
                "post": {
                    "operationId": "addImageTag",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {"name": {"type": "string", "maxLength": 50}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _json(
                            {
                                "type": "object",
                                "required": ["image_id", "tags"],
                                "properties": {
                                    "image_id": UUID,
                                    "tags": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                            "The image's tags",
                        ),
                        **_errors(400, 401, 403, 404),
                    },
                },
            },
            "/api/v1/images/{image_id}/tags/{name}": {
                "parameters": [
                    _path_id("image_id"),
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "The tag's name, percent-encoded (a name may hold / or be ..).",
                    },
                ],
                "delete": {
                    "operationId": "removeImageTag",
                    "responses": {"204": {"description": "Removed"}, **_errors(401, 403, 404)},
                },
            },
            "/api/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["providers"],
                                "properties": {"providers": {"type": "array", "items": {"type": "object"}}},
                            },
                            "Enabled providers and their models",
                        ),
                        **_errors(401),
                    },
                },
            },
            "/api/v1/presets": {
                "get": {
                    "operationId": "listPresets",
                    "description": "The style presets you may use: your own, then staff's (for everyone).",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["results"],
                                "properties": {
                                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/Preset"}}
                                },
                            },
                            "Your presets and staff's",
                        ),
                        **_errors(401),
                    },
                }
            },
            "/api/v1/variants": {
                "post": {
                    "operationId": "createVariantSet",
                    "description": (
                        "Make 2 to 6 sibling tasks from one submission, whole or not at all: the cap on waiting "
                        "tasks, GENERATE_RATE and the quotas count every task of the set, and a set that does "
                        "not fit is refused whole (429) with nothing made. 503 prompt_helper_unavailable: "
                        "`rewrites` could not be had from the prompt helper (off, timed out…); nothing made."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VariantsRequest"}}},
                    },
                    "responses": {
                        "201": _json({"$ref": "#/components/schemas/VariantSet"}, "The set, made"),
                        "503": _json(ERROR, "The prompt helper could not rewrite the prompt"),
                        **_errors(400, 401, 403, 413, 429),
                    },
                }
            },
            "/api/v1/variants/{set_id}": {
                "parameters": [_path_int("set_id")],
                "get": {
                    "operationId": "getVariantSet",
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/VariantSet"}, "The set with its tasks"),
                        **_errors(401, 404),
                    },
                },
            },
            "/api/v1/variants/{set_id}/keep": {
                "parameters": [_path_int("set_id")],
                "post": {
                    "operationId": "keepVariant",
                    "description": "Keep one of the set's completed tasks: the set's kept_task_id, and the tag "
                    "`kept` on its images (moved from the one kept before).",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "required": ["task_id"], "properties": {"task_id": UUID}}
                            }
                        },
                    },
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/VariantSet"}, "The set, with the one kept"),
                        "409": _json(ERROR, "That task has not completed: nothing to keep (`not_completed`)"),
                        **_errors(400, 401, 403, 404, 413),
                    },
                },
            },
            **sharing_paths(),
            "/api/v1/system/info": {
                "get": {
                    "operationId": "systemInfo",
                    "responses": {
                        "200": _json(
                            {"$ref": "#/components/schemas/SystemInfo"},
                            "Version, providers and your limits",
                        ),
                        **_errors(401),
                    },
                }
            },
            "/api/v1/health": {
                "get": {
                    "operationId": "health",
                    "security": [],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"type": "string"}, "version": {"type": "string"}},
                            },
                            "Alive",
                        )
                    },
                },
            },
        },
    }


def _optional_body(schema: str) -> dict:
    return {"required": False, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _toggle(field: str, what: str) -> dict:
    return {
        "required": False,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {field: {"type": "boolean", "description": what}}}
            }
        },
    }


def _toggled(field: str, counter: str) -> dict:
    schema = {
        "type": "object",
        "required": [field, counter],
        "properties": {field: {"type": "boolean"}, counter: {"type": "integer", "minimum": 0}},
    }
    return {"200": _json(schema, "Your choice now, and the count"), **_errors(400, 401, 403, 404, 413)}


SHARING_OFF = " A 404 when the server's SHARING is off."
LINKS_OFF = " A 404 unless the server's SHARING is public."


def sharing_paths() -> dict:
    """Publishing, Explore and share links (sharing.api)."""
    publication_id = _path_id("publication_id")
    return {
        "/api/v1/images/{image_id}/publish": {
            "parameters": [_path_id("image_id")],
            "post": {
                "operationId": "publishImage",
                "description": "Publish your image on Explore for everyone signed in (201), or change the title "
                "or whether the prompt shows (200): counts, date and any hiding by staff stay." + SHARING_OFF,
                "requestBody": _optional_body("PublishRequest"),
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Publication"}, "Changed"),
                    "201": _json({"$ref": "#/components/schemas/Publication"}, "Published"),
                    **_errors(400, 401, 403, 404, 413),
                },
            },
            "delete": {
                "operationId": "unpublishImage",
                "description": "Take your image off Explore, with its likes, favourites and counts (204 also when "
                "it was not published)." + SHARING_OFF,
                "responses": {"204": {"description": "Not published"}, **_errors(401, 403, 404)},
            },
        },
        "/api/v1/explore": {
            "get": {
                "operationId": "explore",
                "description": "Everyone's published images that staff have not hidden. A cursor that is not "
                "one Atelier gave out for this sort reads as the first page, as on the Explore page." + SHARING_OFF,
                "parameters": [
                    _query(
                        "sort",
                        {"type": "string", "enum": ["latest", "liked", "popular"]},
                        "latest (default), liked (most likes), popular (likes, downloads and views of the "
                        "last 7 days).",
                    ),
                    _query("model", {"type": "string"}, "Only this `provider:model`."),
                    _query("q", {"type": "string"}, "Words in the title or a shown prompt."),
                    *PAGE_PARAMETERS,
                ],
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/ExplorePage"}, "A page of published images"),
                    **_errors(400, 401, 404),
                },
            }
        },
        "/api/v1/explore/{publication_id}/like": {
            "parameters": [publication_id],
            "post": {
                "operationId": "likePublication",
                "description": "Like (default) or unlike a published image." + SHARING_OFF,
                "requestBody": _toggle("liked", "true to like (default), false to unlike."),
                "responses": _toggled("liked", "like_count"),
            },
        },
        "/api/v1/explore/{publication_id}/favourite": {
            "parameters": [publication_id],
            "post": {
                "operationId": "favouritePublication",
                "description": "Keep a published image in your favourites (default) or take it out." + SHARING_OFF,
                "requestBody": _toggle("favourited", "true to keep (default), false to drop."),
                "responses": _toggled("favourited", "favourite_count"),
            },
        },
        "/api/v1/explore/{publication_id}/file": {
            "parameters": [
                publication_id,
                _query("download", {"type": "string"}, "Any value: send as an attachment (counts a download)."),
            ],
            "get": {
                "operationId": "getPublicationFile",
                "description": "The original; without its embedded prompt when the author keeps it." + SHARING_OFF,
                "responses": IMAGE_FILE,
            },
        },
        "/api/v1/explore/{publication_id}/thumbnail": {
            "parameters": [publication_id],
            "get": {"operationId": "getPublicationThumbnail", "responses": IMAGE_FILE},
        },
        "/api/v1/share-links": {
            "get": {
                "operationId": "listShareLinks",
                "description": "Your share links, newest first, revoked and expired ones too." + LINKS_OFF,
                "parameters": PAGE_PARAMETERS,
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/ShareLinkPage"}, "A page of your links"),
                    **_errors(400, 401, 404),
                },
            },
            "post": {
                "operationId": "createShareLink",
                "description": "A link anyone holding it may open without an account, to one or up to 100 of your "
                "images. Its `url` is in this answer only." + LINKS_OFF,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ShareLinkRequest"}}},
                },
                "responses": {
                    "201": _json({"$ref": "#/components/schemas/NewShareLink"}, "The link, with its URL once"),
                    **_errors(400, 401, 403, 404, 413),
                },
            },
        },
        "/api/v1/share-links/{link_id}": {
            "parameters": [_path_id("link_id")],
            "delete": {
                "operationId": "revokeShareLink",
                "description": "Revoke your link: it shows nothing from the next request on (204 also when it "
                "was revoked already)." + LINKS_OFF,
                "responses": {"204": {"description": "Revoked"}, **_errors(401, 403, 404)},
            },
        },
    }


@login_not_required
def openapi_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(document())
