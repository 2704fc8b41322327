"""Seed a starter set of moderation concepts, disabled until an admin enables them.

They need a real CLIP model: the bundled demo model knows synthetic shapes
and colours, not real-world scenes.
"""

from django.db import migrations

STARTER_CONCEPTS = [
    ("violence", ["a violent scene", "people fighting", "a person being attacked"], ["people hugging", "a sports match", "a peaceful street"]),
    ("gore", ["a bloody wound", "graphic gore", "a mutilated body"], ["red paint", "a plate of food", "a medical illustration"]),
    ("weapons", ["a gun", "a rifle", "a knife used as a weapon"], ["a kitchen utensil", "a power tool", "a toy"]),
    ("nudity", ["a nude person", "explicit nudity"], ["a person in swimwear", "a classical statue", "a person in clothes"]),
    ("hate symbols", ["a hate symbol", "a swastika", "extremist propaganda"], ["a religious symbol", "a company logo", "a flag"]),
    ("drugs", ["illegal drugs", "a syringe with drugs", "cocaine lines"], ["medicine tablets", "flour on a table", "a doctor with a syringe"]),
    ("self-harm", ["self-harm", "cuts on a wrist", "a person hurting themselves"], ["a bandaged knee", "a tattoo", "a person resting"]),
]


def seed(apps, schema_editor):
    Concept = apps.get_model("assetsearch", "ModerationConcept")
    for name, prompts, counter_prompts in STARTER_CONCEPTS:
        Concept.objects.get_or_create(
            name=name,
            defaults={"prompts": prompts, "counter_prompts": counter_prompts, "threshold": 0.8, "enabled": False},
        )


def unseed(apps, schema_editor):
    Concept = apps.get_model("assetsearch", "ModerationConcept")
    Concept.objects.filter(name__in=[name for name, _, _ in STARTER_CONCEPTS], enabled=False).delete()


class Migration(migrations.Migration):
    dependencies = [("assetsearch", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
