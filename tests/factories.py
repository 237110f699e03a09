from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from generator.models import Task

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    owner = factory.SubFactory(UserFactory)
    provider = "offline"
    model = "sketch-v1"
    prompt = factory.Sequence(lambda n: f"a lighthouse on a cliff, study {n}")
    width = 256
    height = 192
    num_images = 1
    seed = 1234
