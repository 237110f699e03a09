"""Six starting style presets for everyone (staff's: no owner), in English and Chinese. They set
no model, size, steps or guidance, so they work with every provider. Reversing deletes only
those still exactly as made here."""

from django.db import migrations

SEEDS = [
    {
        "name": "Photographic",
        "name_zh_hans": "摄影",
        "prompt_template": "{prompt}, professional photograph, natural light, sharp focus, realistic detail, 35mm lens",
        "negative_prompt": "illustration, painting, drawing, cartoon, anime, cgi, blurry, oversaturated, watermark, text",
    },
    {
        "name": "Watercolour",
        "name_zh_hans": "水彩",
        "prompt_template": "watercolour painting of {prompt}, soft washes, visible paper texture, gentle colour bleeds",
        "negative_prompt": "photograph, photorealistic, 3d render, hard edges, harsh lines, text, watermark",
    },
    {
        "name": "Line art",
        "name_zh_hans": "线稿",
        "prompt_template": "clean line art of {prompt}, black ink on white, crisp outlines, minimal shading",
        "negative_prompt": "colour, colourful, photograph, gradients, heavy shading, blurry, text, watermark",
    },
    {
        "name": "Anime",
        "name_zh_hans": "动漫",
        "prompt_template": "anime illustration of {prompt}, cel shading, vibrant colours, expressive, detailed background",
        "negative_prompt": "photograph, photorealistic, 3d render, deformed, extra fingers, blurry, text, watermark",
    },
    {
        "name": "3D render",
        "name_zh_hans": "3D 渲染",
        "prompt_template": "3d render of {prompt}, physically based materials, soft global illumination, studio lighting",
        "negative_prompt": "photograph, drawing, sketch, flat, 2d, lowres, noisy, text, watermark",
    },
    {
        "name": "Pixel art",
        "name_zh_hans": "像素画",
        "prompt_template": "pixel art of {prompt}, 16-bit, limited palette, crisp pixels, retro game style",
        "negative_prompt": "photograph, photorealistic, smooth gradients, blurry, anti-aliasing, 3d render, text",
    },
]


def seed(apps, schema_editor):
    Preset = apps.get_model("prompts", "Preset")
    for position, fields in enumerate(SEEDS):
        if not Preset.objects.filter(owner__isnull=True, name=fields["name"]).exists():
            Preset.objects.create(owner=None, position=position, **fields)


def unseed(apps, schema_editor):
    Preset = apps.get_model("prompts", "Preset")
    for position, fields in enumerate(SEEDS):
        Preset.objects.filter(
            owner__isnull=True,
            position=position,
            model="",
            width=None,
            height=None,
            steps=None,
            guidance_scale=None,
            preview=None,
            **fields,
        ).delete()


class Migration(migrations.Migration):
    dependencies = [("prompts", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
