from django.urls import path

from .views import improve, presets, variants

app_name = "prompts"
urlpatterns = [
    # The prompt helper: a suggestion beside the person's prompt (htmx), or a page of its own.
    path("prompts/improve", improve.improve, name="improve"),
    # Style presets: staff's (admin) and one's own (this page).
    path("presets/", presets.preset_list, name="presets"),
    path("presets/new", presets.preset_create, name="preset_create"),
    path("presets/<int:preset_id>/", presets.preset_edit, name="preset_edit"),
    path("presets/<int:preset_id>/delete", presets.preset_delete, name="preset_delete"),
    path("presets/<int:preset_id>/card", presets.preset_card, name="preset_card"),
    # Variant sets: several sibling tasks from one submission, and keeping one of them.
    path("variants/", variants.variant_create, name="variant_create"),
    path("variants/<int:set_id>/", variants.variant_set, name="variant_set"),
    path("variants/<int:set_id>/keep/<uuid:task_id>", variants.variant_keep, name="variant_keep"),
]
