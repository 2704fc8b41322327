"""A host's own models (tests/hostapp: Photo, Illustration), indexed in place by the real worker."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import override_settings

from assetsearch.constants import EmbeddingStatus
from assetsearch.exceptions import SearchError
from assetsearch.models import Asset, IndexEntry, ModerationConcept, ModerationFlag
from assetsearch.registry import NotRegistered, get_index, register, register_from_settings, unregister
from assetsearch.search import Filters, Query, search
from tests.hostapp.models import Category, Illustration, Photo

from .api_helpers import assetsearch_settings, token_client
from .utils import image_file, scene, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]

SHAPES = [("red", "circle"), ("red", "square"), ("blue", "square"), ("green", "star"), ("yellow", "triangle"), ("purple", "heart")]


def entry_of(obj) -> IndexEntry | None:
    return IndexEntry.objects.for_objects(type(obj), [obj.pk]).search_alias().first()


def status_of(obj) -> str | None:
    entry = entry_of(obj)
    return entry.status if entry else None


def wait_until_ready(*objects, timeout: float = 90) -> None:
    for obj in objects:
        wait_for(lambda: status_of(obj) == EmbeddingStatus.READY, timeout=timeout, message=f"{obj} to be embedded")


def photo(colour: str, shape: str, *, seed: int = 0, category: Category | None = None, caption: str | None = None, **fields) -> Photo:
    return Photo.objects.create(
        image=image_file(scene(colour=colour, shape=shape), seed=seed, name=f"{colour}-{shape}.png"),
        caption=caption if caption is not None else f"{colour} {shape}", category=category, **fields,
    )


@pytest.fixture
def photos(celery_worker):
    outdoors, studio = Category.objects.create(name="outdoors"), Category.objects.create(name="studio")
    made = {
        (c, s): photo(c, s, seed=i, category=outdoors if i % 2 == 0 else studio, tags=[c, s])
        for i, (c, s) in enumerate(SHAPES)
    }
    made["zebra"] = photo("blue", "star", seed=99, caption="zebra crossing", category=studio)
    wait_until_ready(*made.values())
    return {"outdoors": outdoors, "studio": studio, **made}


def test_photos_created_through_the_orm_are_embedded_and_searchable_by_text_image_composed_and_hybrid(photos):
    entry = entry_of(photos["red", "circle"])
    assert entry.attempts == 1 and len(entry.content_hash) == 64 and entry.source_key == photos["red", "circle"].image.name

    results = search(Query(text="a red circle", models=[Photo], limit=3))
    assert isinstance(results.hits[0].object, Photo) and results.hits[0].object == photos["red", "circle"]
    assert results.hits[0].model == "hostapp.photo" and results.hits[0].asset is None
    assert results.hits[0].score > results.hits[1].score

    by_image = search(Query(image=scene(colour="green", shape="star").render(seed=5), models=["hostapp.photo"], limit=2))
    assert by_image.hits[0].object == photos["green", "star"]

    composed = search(Query(image=scene(colour="red", shape="circle").render(seed=7), text="a square", models=[Photo], limit=3))
    assert composed.hits[0].object == photos["red", "square"], [h.object.caption for h in composed.hits]

    hybrid = search(Query(text="zebra", hybrid=True, models=[Photo], limit=3))
    assert hybrid.strategy.startswith("hybrid:") and hybrid.hits[0].object == photos["zebra"]
    assert hybrid.hits[0].part_ranks["keyword"] == 1


def test_declared_filters_fill_pages_category_tags_and_dates(photos):
    outdoors = photos["outdoors"]
    expected = set(Photo.objects.filter(category=outdoors).values_list("pk", flat=True))
    results = search(Query(text="a shape", models=[Photo], filters=Filters(fields={"category": outdoors.pk}), limit=10))
    assert {h.object.pk for h in results.hits} == expected and len(results.hits) == len(expected)
    assert results.strategy == "exact"  # few rows: the matching rows are scanned exactly

    tagged = search(Query(text="a shape", models=[Photo], filters=Filters(tags=["red"]), limit=10))
    assert {h.object.caption for h in tagged.hits} == {"red circle", "red square"}
    # A filter the index does not declare matches nothing (rather than being ignored).
    assert search(Query(text="a shape", models=[Photo], filters=Filters(mime_types=["image/png"]))).hits == []
    assert search(Query(text="a shape", models=[Photo], filters=Filters(fields={"caption": "x"}))).hits == []


def test_an_unchanged_image_sends_nothing_and_a_replaced_image_is_embedded_again(photos):
    target = photos["blue", "square"]
    before = entry_of(target)
    target.caption = "a new caption"
    target.save()
    after = entry_of(target)
    assert (after.status, after.embedded_at, after.attempts) == (EmbeddingStatus.READY, before.embedded_at, 1)

    target.image = image_file(scene(colour="orange", shape="triangle"), seed=3, name="replacement.png")
    target.save()
    assert status_of(target) == EmbeddingStatus.PENDING
    wait_until_ready(target)
    replaced = entry_of(target)
    assert replaced.content_hash != before.content_hash and replaced.embedded_at > before.embedded_at
    assert search(Query(text="an orange triangle", models=[Photo], limit=1)).hits[0].object == target


def test_deleting_a_photo_removes_its_entry_and_never_its_file(photos):
    target = photos["green", "star"]
    storage, name = target.image.storage, target.image.name
    Photo.objects.filter(pk=target.pk).delete()  # a queryset delete: post_delete per object
    assert not IndexEntry.objects.for_objects(Photo, [target.pk]).exists()
    assert storage.exists(name)
    assert target.pk not in [h.object.pk for h in search(Query(text="a green star", models=[Photo])).hits]


def test_a_hide_concept_hides_a_photo_from_an_editor_and_view_permission_decides_the_rest(photos):
    concept = ModerationConcept.objects.create(
        name="yellow triangles", prompts=["a yellow triangle"], threshold=0.5, action="hide", enabled=False,
        counter_prompts=["a yellow square", "a yellow circle", "a red triangle", "a blue triangle", "a green triangle"],
    )
    from assetsearch.moderation import rescore_concept

    ModerationConcept.objects.filter(pk=concept.pk).update(enabled=True)
    rescore_concept(concept.pk)
    hidden = photos["yellow", "triangle"]
    flagged = {flag.content_object for flag in ModerationFlag.objects.all()}
    assert hidden in flagged and all(flag.asset is None for flag in ModerationFlag.objects.all())
    everyone = set(Photo.objects.all())

    editor = User.objects.create_user("photo-editor")
    editor.user_permissions.add(Permission.objects.get(codename="view_photo"))
    moderator = User.objects.create_user("photo-moderator")
    moderator.user_permissions.add(Permission.objects.get(codename="view_photo"), Permission.objects.get(codename="moderate_asset"))
    stranger = User.objects.create_user("no-photo-permission")
    editor, moderator = User.objects.get(pk=editor.pk), User.objects.get(pk=moderator.pk)  # fresh permission caches

    def found(user, **options):
        return [h.object for h in search(Query(text="a yellow triangle", models=[Photo], user=user, limit=10, **options)).hits]

    assert set(found(editor)) == everyone - flagged
    assert found(moderator)[0] == hidden and set(found(moderator)) == everyone
    assert found(stranger) == []
    assert hidden not in found(editor, hybrid=True)
    # Everywhere else the hiding applies: similar and moderation queries.
    from assetsearch.moderation import moderation_query

    assert hidden not in [h.object for h in search(Query(like=photos["red", "circle"], models=[Photo], user=editor)).hits]
    assert hidden not in [h.object for h in moderation_query("a yellow triangle", user=editor, models=[Photo])]
    # Deleting the photo takes its flag with its entry.
    entry = entry_of(hidden)
    hidden.delete()
    assert not ModerationFlag.objects.filter(entry_id=entry.pk).exists()


def test_cross_model_search_returns_objects_of_every_registered_model(photos):
    drawing = Illustration.objects.create(file=image_file(scene(colour="green", shape="star"), seed=42), title="a drawing")
    asset = Asset.objects.create(image=image_file(scene(colour="green", shape="star"), seed=43), title="an asset")
    wait_until_ready(drawing, asset)
    hits = search(Query(text="a green star", limit=6)).hits
    top = [h.object for h in hits[:4]]
    assert {photos["green", "star"], drawing, asset} <= set(top), [(h.model, str(h.object), h.score) for h in hits]
    only = search(Query(text="a green star", models=[Illustration, "hostapp.photo"], limit=10)).hits
    assert {type(h.object) for h in only} == {Photo, Illustration}
    similar = search(Query(like=drawing, models=[Photo, Asset], limit=2)).hits
    assert {type(h.object) for h in similar} <= {Photo, Asset} and drawing not in [h.object for h in similar]


def test_rest_api_searches_a_model_with_the_generic_hit_shape(photos):
    user = User.objects.create_user("api-photo-viewer")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_asset", "view_photo"]))
    client = token_client(user)
    response = client.get("/api/search/", {"q": "a red circle", "model": "hostapp.photo", "limit": 3})
    assert response.status_code == 200, response.content
    first = response.json()["results"][0]
    assert (first["model"], first["id"], first["title"]) == ("hostapp.photo", photos["red", "circle"].pk, "red circle")
    assert first["asset"] is None and first["object"]["caption"] == "red circle"
    assert first["thumbnail_url"].endswith(f"/api/objects/hostapp.photo/{photos['red', 'circle'].pk}/thumbnail/")
    thumbnail = client.get(first["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/jpeg"

    filtered = client.post(
        "/api/search/", {"text": "a shape", "model": ["hostapp.photo"], "filters": {"tags": ["red"]}}, format="json"
    ).json()["results"]
    assert {r["title"] for r in filtered} == {"red circle", "red square"}
    unknown = client.get("/api/search/", {"q": "x", "model": "auth.user"})
    assert unknown.status_code == 400 and "Unknown model" in unknown.json()["error"]["message"]

    # Without view_photo no photo is returned (nor its thumbnail).
    blind = User.objects.create_user("api-asset-viewer")
    blind.user_permissions.add(Permission.objects.get(codename="view_asset"))
    blind_client = token_client(blind)
    assert blind_client.get("/api/search/", {"q": "a red circle", "model": "hostapp.photo"}).json()["results"] == []
    assert blind_client.get(first["thumbnail_url"]).status_code == 404


def test_raw_fixture_loads_are_skipped_and_rows_from_before_registration_are_backfilled(celery_worker):
    category = Category.objects.create(name="archive")
    existing = Photo(image=image_file(scene(colour="red", shape="star"), seed=1), caption="archived", category=category)
    existing.image.save("archived.png", existing.image.file, save=False)
    existing.save_base(raw=True)  # as loaddata saves: no signal work
    assert not IndexEntry.objects.for_objects(Photo, [existing.pk]).exists()
    with override_settings(ASSETSEARCH={"AUTO_EMBED": False}):
        quiet = photo("blue", "circle", seed=2, category=category)  # marked pending, not sent
    assert status_of(quiet) == EmbeddingStatus.PENDING

    out = io.StringIO()
    call_command("assetsearch_status", stdout=out)
    assert "hostapp.photo" in out.getvalue()
    call_command("assetsearch_reembed", model=["hostapp.photo"], sync=True, stdout=out, verbosity=1)
    assert "Embedded 2 photos of hostapp.photo" in out.getvalue()
    assert status_of(existing) == status_of(quiet) == EmbeddingStatus.READY
    out = io.StringIO()
    call_command("assetsearch_status", "--json", stdout=out)
    import json

    row = next(r for r in json.loads(out.getvalue()) if r["model"] == "hostapp.photo")
    assert (row["objects"], row["ready"], row["missing"]) == (2, 2, 0)
    with pytest.raises(Exception, match="No indexed model 'auth.user'"):
        call_command("assetsearch_reembed", model=["auth.user"])


def test_registry_by_settings_errors_and_labels():
    assert get_index("hostapp.Photo").model is Photo and get_index(Photo).label == "hostapp.photo"
    with pytest.raises(NotRegistered):
        get_index(User)
    with pytest.raises(SearchError, match="No indexed model"):
        Query(text="x", models=["auth.user"]).clean()
    with assetsearch_settings(INDEXES={"auth.Group": "assetsearch.indexes.BaseImageIndex"}):
        register_from_settings()
    from django.contrib.auth.models import Group

    try:
        assert get_index(Group).label == "auth.group"
    finally:
        unregister(Group)
    with pytest.raises(NotRegistered):
        get_index(Group)
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="already registered"):
        register(Photo)


def test_no_image_means_no_entry_and_no_task(celery_worker):
    empty = Photo.objects.create(image="", caption="no image yet")
    assert not IndexEntry.objects.for_objects(Photo, [empty.pk]).exists()
    empty.image = SimpleUploadedFile("late.png", image_file().read())
    empty.save()
    wait_until_ready(empty)
    empty.image = ""
    empty.save()
    assert not IndexEntry.objects.for_objects(Photo, [empty.pk]).exists()


def test_the_host_admin_with_the_mixin_searches_by_meaning_and_shows_entry_states(photos, client):
    staff = User.objects.create_user("photo-staff", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_photo"))
    client.force_login(staff)
    response = client.get("/admin/hostapp/photo/", {"q": "a red circle"})
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert rows[0] == photos["red", "circle"] and rows[0].search_score > rows[1].search_score
    assert "similarity" in response.context["cl"].list_display
    assert "Ready" in response.content.decode()
    # An exact caption still matches by keyword.
    keyword = list(client.get("/admin/hostapp/photo/", {"q": "zebra"}).context["cl"].result_list)
    assert keyword[0] == photos["zebra"]
    similar = client.get(f"/admin/hostapp/photo/{photos['red', 'circle'].pk}/similar/")
    assert similar.status_code == 200
    hits = similar.context["results"].hits
    assert photos["red", "circle"] not in [h.object for h in hits] and len(hits) == len(photos) - 3
    assert all(isinstance(h.object, Photo) for h in hits)
