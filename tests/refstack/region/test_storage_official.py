"""Storage through the official client, unchanged: supabase-py's `client.storage` (storage3 2.34.1)."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest
from storage3.exceptions import StorageApiError

from harness.model import keys
from harness.procs.serving import BackgroundServer
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from tests.refstack.region.conftest import PASSWORD, MakeConversation, MakeUser


def _options() -> AsyncClientOptions:
    return AsyncClientOptions(auto_refresh_token=False, persist_session=False)


async def _signed_in(url: str, email: str) -> AsyncClient:
    client = await acreate_client(url, keys.ANON_KEY, options=_options())
    await client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    return client


def test_upload_download_sign_list_remove(
    region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation
) -> None:
    _alice, alice_token, _ = make_user("alice-storage@example.com")
    bob, _bob_token, _ = make_user("bob-storage@example.com")
    _eve, _eve_token, _ = make_user("eve-storage@example.com")
    conv = make_conversation(alice_token, [bob])
    photo = hashlib.sha256(b"photo").digest() * 1000

    async def scenario() -> None:
        alice = await _signed_in(region.url, "alice-storage@example.com")
        bob_client = await _signed_in(region.url, "bob-storage@example.com")
        eve = await _signed_in(region.url, "eve-storage@example.com")
        files = alice.storage.from_("attachments")

        uploaded = await files.upload(f"{conv}/photo.jpg", photo, {"content-type": "image/jpeg"})
        assert uploaded.full_path == f"attachments/{conv}/photo.jpg" and uploaded.path == f"{conv}/photo.jpg"
        await files.upload(f"{conv}/docs/readme.txt", b"read me", {"content-type": "text/plain"})
        with pytest.raises(StorageApiError) as duplicate:
            await files.upload(f"{conv}/photo.jpg", b"again", {"content-type": "image/jpeg"})
        assert str(duplicate.value.status) == "409" and duplicate.value.code == "Duplicate"
        # Overwriting needs an UPDATE policy on storage.objects; the migration gives users none, so only the
        # service role (which bypasses row-level security) may overwrite here.
        with pytest.raises(StorageApiError) as no_update_policy:
            await files.update(f"{conv}/docs/readme.txt", b"read me v2", {"content-type": "text/plain"})
        assert str(no_update_policy.value.status) == "403"
        admin = (await acreate_client(region.url, keys.SERVICE_ROLE_KEY, options=_options())).storage
        admin_files = admin.from_("attachments")
        await admin_files.upload(f"{conv}/photo.jpg", photo, {"content-type": "image/jpeg", "upsert": "true"})
        await admin_files.update(f"{conv}/docs/readme.txt", b"read me v2", {"content-type": "text/plain"})

        bob_files = bob_client.storage.from_("attachments")
        assert await bob_files.download(f"{conv}/photo.jpg") == photo
        assert await bob_files.download(f"{conv}/docs/readme.txt") == b"read me v2"
        assert await bob_files.exists(f"{conv}/photo.jpg") is True
        assert await bob_files.exists(f"{conv}/nothing.jpg") is False

        signed = await bob_files.create_signed_url(f"{conv}/photo.jpg", 60)
        assert signed["signedURL"].startswith(f"{region.url}/storage/v1/object/sign/attachments/{conv}/photo.jpg?")
        async with httpx.AsyncClient() as http:
            assert (await http.get(signed["signedURL"])).content == photo
        batch = await bob_files.create_signed_urls([f"{conv}/photo.jpg", f"{conv}/docs/readme.txt"], 60)
        assert [item["error"] for item in batch] == [None, None]

        listed = await bob_files.list(conv)
        assert [(e["name"], e["id"] is None) for e in listed] == [("docs", True), ("photo.jpg", False)]
        assert listed[1]["metadata"]["size"] == len(photo)

        eve_files = eve.storage.from_("attachments")
        with pytest.raises(StorageApiError) as refused:
            await eve_files.upload(f"{conv}/intruder.txt", b"x")
        assert str(refused.value.status) == "403"
        with pytest.raises(StorageApiError) as hidden:
            await eve_files.download(f"{conv}/photo.jpg")
        assert str(hidden.value.status) == "404"
        assert await eve_files.list(conv) == []

        assert await bob_files.remove([f"{conv}/photo.jpg"]) == []  # not the uploader
        removed = await files.remove([f"{conv}/photo.jpg", f"{conv}/docs/readme.txt"])
        assert sorted(r["name"] for r in removed) == [f"{conv}/docs/readme.txt", f"{conv}/photo.jpg"]
        with pytest.raises(StorageApiError) as gone:
            await files.download(f"{conv}/photo.jpg")
        assert gone.value.code == "not_found"

    asyncio.run(scenario())


def test_buckets_and_public_url_with_the_service_key(region: BackgroundServer) -> None:
    async def scenario() -> None:
        admin = await acreate_client(region.url, keys.SERVICE_ROLE_KEY, options=_options())
        buckets = {b.id: b for b in await admin.storage.list_buckets()}
        assert buckets["attachments"].public is False

        assert await admin.storage.create_bucket("avatars", options={"public": True}) == {"name": "avatars"}
        bucket = await admin.storage.get_bucket("avatars")
        assert bucket.public is True and bucket.file_size_limit is None
        await admin.storage.update_bucket("avatars", {"public": True, "file_size_limit": 1024})
        assert (await admin.storage.get_bucket("avatars")).file_size_limit == 1024

        avatars = admin.storage.from_("avatars")
        await avatars.upload("u1/face.png", b"\x89PNG", {"content-type": "image/png"})
        url = await avatars.get_public_url("u1/face.png")
        assert url == f"{region.url}/storage/v1/object/public/avatars/u1/face.png"
        async with httpx.AsyncClient() as http:
            public = await http.get(url)  # no credentials at all
        assert public.status_code == 200 and public.content == b"\x89PNG"
        assert public.headers["content-type"] == "image/png"

        with pytest.raises(StorageApiError) as too_large:
            await avatars.upload("u1/big.png", b"x" * 2048, {"content-type": "image/png"})
        assert str(too_large.value.status) == "413"

        with pytest.raises(StorageApiError) as not_empty:
            await admin.storage.delete_bucket("avatars")
        assert str(not_empty.value.status) == "409"
        await admin.storage.empty_bucket("avatars")
        await admin.storage.delete_bucket("avatars")
        assert "avatars" not in {b.id for b in await admin.storage.list_buckets()}

        anon = await acreate_client(region.url, keys.ANON_KEY, options=_options())
        with pytest.raises(StorageApiError) as denied:
            await anon.storage.create_bucket("nope")
        assert str(denied.value.status) == "403"

    asyncio.run(scenario())
