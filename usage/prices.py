"""Prices per image: the vendors' list prices as defaults, ModelPrice rows (the admin) over them.

A task's cost is worked out once, when it completes (services.store_images calls cost_of), and
written on the task: a price changed later changes what new tasks cost, never old ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import ModelPrice

if TYPE_CHECKING:
    from generator.models import Task

# The overrides live in the shared cache for a minute; editing a price in the admin clears
# them at once in this process and everywhere sharing the cache (Redis, or the file cache).
OVERRIDES_CACHE_KEY = "usage:model-prices:v1"
OVERRIDES_CACHE_SECONDS = 60


@dataclass(frozen=True)
class Price:
    amount: Decimal  # per image
    currency: str
    source: str = ""  # where a default figure comes from; "" for a staff override


def _usd(amount: str, source: str) -> Price:
    return Price(Decimal(amount), "USD", source)


def _cny(amount: str, source: str) -> Price:
    return Price(Decimal(amount), "CNY", source)


# Sources of the figures below (each the vendor's own price list, figures as last read in 2025-26;
# prices change: check them against your own invoices and correct them in the admin).
OPENAI = "openai.com/api/pricing (image generation, per image at medium quality, 1024x1024)"
OPENAI_TOKENS = (
    "openai.com/api/pricing: image output $30 per 1M tokens x about 1,056 tokens for a medium-quality "
    "1024x1024 picture (the figure OpenAI's guide gives for GPT Image), an estimate"
)
DASHSCOPE = "help.aliyun.com/zh/model-studio/models (模型列表与价格, 北京, 元/张)"
VOLC_JIMENG = "volcengine.com/docs/85621/1544714 (即梦AI 计费说明, 元/张, 后付费)"
ARK = "volcengine.com/docs/82379/1544106 (火山方舟 模型价格, 图片生成, 元/张)"
SILICONFLOW = "siliconflow.cn/pricing (按张计费, 元/张)"
FREE = "runs on your own machine: no charge per image"

# (provider, model) -> the list price of one picture. A model missing here has no price until
# staff set one in the admin (Usage and quotas > Model prices): its tasks' cost stays empty and
# counts as 0 against a spend quota.
DEFAULT_PRICES: dict[tuple[str, str], Price] = {
    # OpenAI: GPT Image 1 / 1 mini / 1.5 and DALL·E at their published per-image figures
    # (medium, 1024x1024; DALL·E 3 standard, DALL·E 2 1024x1024). Retired models keep a price
    # so old tasks still read right.
    ("openai", "gpt-image-2"): _usd("0.032", OPENAI_TOKENS),
    ("openai", "gpt-image-2-2026-04-21"): _usd("0.032", OPENAI_TOKENS),
    ("openai", "gpt-image-1.5"): _usd("0.034", OPENAI),
    ("openai", "gpt-image-1.5-2025-12-16"): _usd("0.034", OPENAI),
    ("openai", "chatgpt-image-latest"): _usd("0.034", OPENAI),
    ("openai", "gpt-image-1"): _usd("0.042", OPENAI),
    ("openai", "gpt-image-1-mini"): _usd("0.011", OPENAI),
    ("openai", "dall-e-3"): _usd("0.040", OPENAI),
    ("openai", "dall-e-2"): _usd("0.020", OPENAI),
    # DashScope (Alibaba Cloud Model Studio), Beijing region list prices.
    ("dashscope", "wan2.6-t2i"): _cny("0.20", DASHSCOPE),
    ("dashscope", "wan2.5-t2i-preview"): _cny("0.20", DASHSCOPE),
    ("dashscope", "wan2.2-t2i-plus"): _cny("0.20", DASHSCOPE),
    ("dashscope", "wan2.2-t2i-flash"): _cny("0.14", DASHSCOPE),
    ("dashscope", "wanx2.1-t2i-plus"): _cny("0.20", DASHSCOPE),
    ("dashscope", "wanx2.1-t2i-turbo"): _cny("0.14", DASHSCOPE),
    ("dashscope", "wanx2.0-t2i-turbo"): _cny("0.04", DASHSCOPE),
    ("dashscope", "qwen-image"): _cny("0.25", DASHSCOPE),
    ("dashscope", "qwen-image-plus"): _cny("0.20", DASHSCOPE),
    # VolcEngine visual API (Jimeng), per picture.
    ("volcengine", "jimeng_t2i_v40"): _cny("0.20", VOLC_JIMENG),
    ("volcengine", "jimeng_t2i_v31"): _cny("0.20", VOLC_JIMENG),
    ("volcengine", "jimeng_t2i_v30"): _cny("0.20", VOLC_JIMENG),
    # VolcEngine Ark (Seedream over the OpenAI-style API), per picture.
    ("ark", "doubao-seedream-4-5-251128"): _cny("0.25", ARK),
    ("ark", "doubao-seedream-4-0-250828"): _cny("0.20", ARK),
    # SiliconFlow: Kolors is free there; Qwen-Image is charged per picture.
    ("siliconflow", "Kwai-Kolors/Kolors"): _cny("0", SILICONFLOW),
    ("siliconflow", "Qwen/Qwen-Image"): _cny("0.30", SILICONFLOW),
    # The offline sketch is drawn here, and the WebUI runs on the operator's own GPU.
    ("offline", "sketch-v1"): _usd("0", FREE),
}
# Any model of these providers costs nothing per image (the WebUI's checkpoints are the
# operator's own files, named however they like).
FREE_PROVIDERS = {"offline": Price(Decimal(0), "USD", FREE), "automatic1111": Price(Decimal(0), "USD", FREE)}


def price_for(provider: str, model: str) -> Price | None:
    """The price of one picture: staff's override, else the list price, else None (unknown)."""
    override = overrides().get((provider, model))
    if override is not None:
        return override
    return DEFAULT_PRICES.get((provider, model)) or FREE_PROVIDERS.get(provider)


def cost_of(task: Task, images: int) -> tuple[Decimal | None, str]:
    """What `images` pictures of the task's provider model cost, and the currency; (None, "")
    when no price is known."""
    price = price_for(task.provider, task.model)
    if price is None:
        return None, ""
    return price.amount * images, price.currency


def overrides() -> dict[tuple[str, str], Price]:
    """Every ModelPrice row, read once and kept in the cache (one query, then none)."""
    cached = cache.get(OVERRIDES_CACHE_KEY)
    if cached is None:
        cached = {
            (row.provider, row.model): Price(row.price_per_image, row.currency)
            for row in ModelPrice.objects.only("provider", "model", "price_per_image", "currency")
        }
        cache.set(OVERRIDES_CACHE_KEY, cached, OVERRIDES_CACHE_SECONDS)
    return cached


@receiver([post_save, post_delete], sender=ModelPrice, dispatch_uid="usage.prices.forget")
def forget_overrides(**kwargs: object) -> None:
    cache.delete(OVERRIDES_CACHE_KEY)


def in_reporting_currency(amount: Decimal, currency: str) -> Decimal | None:
    """`amount` in USAGE_CURRENCY, or None when there is no rate for `currency`
    (USAGE_EXCHANGE_RATES). Such costs are shown apart and not counted against a spend quota."""
    if currency == settings.USAGE_CURRENCY or amount == 0:
        return amount
    rate = settings.USAGE_EXCHANGE_RATES.get(currency)
    return None if rate is None else amount * rate
