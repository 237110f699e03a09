"""The guarded downloader for provider result links (generator.providers.http).

No public https host exists offline, so the allowed path is the self-hosted one: private
addresses allowed and the local stand-in (pytest-httpserver, plain http) as trusted origin.
"""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from PIL import Image as PILImage
from werkzeug import Response

from generator.models import Image, Task
from generator.providers import GeneratedImage, PermanentProviderError, ProviderError, TransientProviderError, http
from generator.providers.http import DownloadPolicy, check_url, download_image, origin
from generator.scheduler.inline import run_task

from .factories import TaskFactory
from .fakes import ScriptedProvider


def picture(fmt: str = "PNG", size: tuple[int, int] = (16, 12)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, "orange").save(out, fmt)
    return out.getvalue()


def noisy_png(size: int = 64) -> bytes:
    """A PNG that does not compress: several KB for a small picture."""
    out = io.BytesIO()
    noise = PILImage.frombytes("RGB", (size, size), bytes(range(256)) * (size * size * 3 // 256)).effect_spread(8)
    noise.save(out, "PNG")
    return out.getvalue()


@cache
def decompression_bomb() -> bytes:
    """A valid ~50 KB PNG of 20000×20000 black pixels: 400 megapixels once decoded."""
    width = height = 20000
    compressor = zlib.compressobj(9)
    block = (b"\0" * (1 + width // 8)) * 1000  # filter byte + one bit per pixel, 1000 rows
    idat = b"".join(compressor.compress(block) for _ in range(height // 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture
def self_hosted(httpserver) -> DownloadPolicy:
    """The policy of an operator-configured box at the local stand-in."""
    return DownloadPolicy(allow_private=True, trusted_origin=origin(httpserver.url_for("/")))


@pytest.fixture
def no_connections(monkeypatch):
    """Fail the test if the downloader opens any connection."""

    def refuse_to_connect(*args, **kwargs):
        raise AssertionError("the downloader tried to connect")

    monkeypatch.setattr(http, "session", refuse_to_connect)
    monkeypatch.setattr(http, "connection_pool", refuse_to_connect)  # where downloads connect


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- what is fetched -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_an_image_from_an_allowed_link_is_returned_as_bytes(httpserver, self_hosted, fmt):
    data = picture(fmt)
    httpserver.expect_request("/results/a.img", method="GET").respond_with_data(data, content_type="image/png")
    assert download_image(httpserver.url_for("/results/a.img?sig=abc"), self_hosted) == data
    assert check_url(httpserver.url_for("/x"), self_hosted) is None


def test_a_body_exactly_at_the_size_cap_is_accepted(httpserver, self_hosted, settings):
    data = noisy_png()
    settings.MAX_IMAGE_BYTES = len(data)
    httpserver.expect_request("/a.png").respond_with_data(data, content_type="image/png")
    assert download_image(httpserver.url_for("/a.png"), self_hosted) == data


# --- links refused before any connection -----------------------------------------------------


def assert_refused(url: str, policy: DownloadPolicy, message: str) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        download_image(url, policy)
    assert caught.value.code == "unsafe_image_url"
    assert message in caught.value.message


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "169.254.169.254", "10.1.2.3", "192.168.1.20", "172.16.0.9", "[::1]", "0.0.0.0"],
)
def test_links_to_private_or_loopback_addresses_are_refused_without_connecting(host, no_connections):
    assert_refused(f"https://{host}/latest/meta-data/image.png", DownloadPolicy(), "private network address")


def test_the_local_box_itself_is_refused_unless_private_addresses_are_allowed(httpserver, no_connections):
    url = httpserver.url_for("/a.png").replace("localhost", "127.0.0.1")
    # Its plain-http origin is trusted, but the provider is not marked self-hosted.
    assert_refused(url, DownloadPolicy(allow_private=False, trusted_origin=origin(url)), "private network address")


@pytest.mark.parametrize("host", ["169.254.169.254", "10.1.2.3", "192.168.1.20", "example.com"])
def test_plain_http_is_refused_outside_the_trusted_origin(host, self_hosted, no_connections):
    assert_refused(f"http://{host}/a.png", self_hosted, "plain-http")


def test_plain_http_to_another_port_or_name_of_the_same_box_is_refused(httpserver, self_hosted, no_connections):
    port = httpserver.port
    for url in (f"http://localhost:{unused_port()}/a.png", f"http://127.0.0.1:{port}/a.png", "http://localhost/a.png"):
        assert_refused(url, self_hosted, "plain-http")


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "gopher://example.com/",
        "//example.com/a.png",
        "https:///a.png",
    ],
)
def test_links_that_are_not_http_are_refused(url, self_hosted, no_connections):
    assert_refused(url, self_hosted, "does not fetch")


@pytest.mark.parametrize(
    "url", ["https://[::1/a.png", "https://example.com:99999999/a.png", "https://example.com:port/a.png"]
)
def test_malformed_links_are_refused(url, self_hosted, no_connections):
    assert_refused(url, self_hosted, "malformed")


# --- what the link answers -------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_refused_even_to_an_allowed_place(httpserver, self_hosted, status):
    location = {"Location": httpserver.url_for("/a.png")}
    httpserver.expect_request("/moved.png").respond_with_data("", status=status, headers=location)
    httpserver.expect_request("/a.png").respond_with_data(picture(), content_type="image/png")
    with pytest.raises(PermanentProviderError) as caught:
        download_image(httpserver.url_for("/moved.png"), self_hosted)
    assert (caught.value.code, caught.value.message) == (
        "unsafe_image_url",
        "The image link redirected elsewhere; Atelier does not follow image redirects.",
    )
    assert [request.path for request, _ in httpserver.log] == ["/moved.png"]


def test_a_body_over_the_cap_with_content_length_is_refused(httpserver, self_hosted, settings):
    data = noisy_png()
    settings.MAX_IMAGE_BYTES = len(data) - 1
    httpserver.expect_request("/big.png").respond_with_data(data, content_type="image/png")
    with pytest.raises(PermanentProviderError) as caught:
        download_image(httpserver.url_for("/big.png"), self_hosted)
    assert caught.value.code == "image_too_large"
    assert httpserver.log[0][1].headers["Content-Length"] == str(len(data))


def test_a_body_over_the_cap_without_content_length_is_cut_off(httpserver, self_hosted, settings):
    data = noisy_png()
    settings.MAX_IMAGE_BYTES = len(data) - 1

    def stream() -> Iterator[bytes]:
        yield from (data[i : i + 1024] for i in range(0, len(data), 1024))

    httpserver.expect_request("/big.png").respond_with_response(
        Response(stream(), content_type="image/png", direct_passthrough=True)
    )
    with pytest.raises(PermanentProviderError) as caught:
        download_image(httpserver.url_for("/big.png"), self_hosted)
    assert caught.value.code == "image_too_large"
    assert "Content-Length" not in httpserver.log[0][1].headers


def test_a_declared_length_over_the_cap_is_refused_before_reading(httpserver, self_hosted, settings):
    settings.MAX_IMAGE_BYTES = 1000
    response = Response(iter([picture()]), content_type="image/png", direct_passthrough=True)
    response.headers["Content-Length"] = "5000000000"  # a lie: the body is small
    httpserver.expect_request("/huge.png").respond_with_response(response)
    with pytest.raises(PermanentProviderError) as caught:
        download_image(httpserver.url_for("/huge.png"), self_hosted)
    assert caught.value.code == "image_too_large"


@pytest.mark.parametrize(
    "body", [b"<!doctype html><title>Expired</title>", b"", b'{"error": "expired"}', b"GIF89a\x01\x00\x01\x00"]
)
def test_a_body_that_is_not_a_png_jpeg_or_webp_is_refused(httpserver, self_hosted, body):
    httpserver.expect_request("/a.png").respond_with_data(body, content_type="image/png")
    with pytest.raises(PermanentProviderError) as caught:
        download_image(httpserver.url_for("/a.png"), self_hosted)
    assert (caught.value.code, caught.value.message) == (
        "invalid_image",
        "The provider's image link did not return an image.",
    )


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_a_missing_or_expired_link_fails_permanently(httpserver, self_hosted, status):
    httpserver.expect_request("/a.png").respond_with_data("gone", status=status)
    with pytest.raises(PermanentProviderError) as caught:
        download_image(httpserver.url_for("/a.png"), self_hosted)
    assert caught.value.code == "download_failed"
    assert f"HTTP {status}" in caught.value.message


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_a_busy_image_host_is_a_transient_failure(httpserver, self_hosted, status):
    httpserver.expect_request("/a.png").respond_with_data("busy", status=status)
    with pytest.raises(TransientProviderError) as caught:
        download_image(httpserver.url_for("/a.png"), self_hosted)
    assert caught.value.code == "download_failed"


def test_an_image_host_that_is_down_is_a_transient_failure():
    url = f"http://127.0.0.1:{unused_port()}/a.png"
    with pytest.raises(TransientProviderError) as caught:
        download_image(url, DownloadPolicy(allow_private=True, trusted_origin=origin(url)))
    assert caught.value.code == "download_failed"


# --- slow bodies -----------------------------------------------------------------------------


class Trickle:
    """A body sent a few bytes at a time; `done` is set once the stand-in stops sending."""

    def __init__(self, data: bytes, *, pieces: int, seconds: float) -> None:
        self.data, self.pieces, self.pause = data, pieces, seconds / pieces
        self.done = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        size = -(-len(self.data) // self.pieces)
        try:
            for start in range(0, len(self.data), size):
                time.sleep(self.pause)
                yield self.data[start : start + size]
        finally:
            self.done.set()

    def serve(self, httpserver, path: str) -> None:
        response = Response(iter(self), content_type="image/png", direct_passthrough=True)
        response.headers["Content-Length"] = str(len(self.data))
        httpserver.expect_request(path).respond_with_response(response)


def test_a_body_trickling_past_the_deadline_is_a_transient_timeout(httpserver, self_hosted, settings):
    settings.DOWNLOAD_DEADLINE_SECONDS = 0.05
    trickle = Trickle(picture(), pieces=8, seconds=0.3)
    trickle.serve(httpserver, "/slow.png")
    with pytest.raises(TransientProviderError) as caught:
        download_image(httpserver.url_for("/slow.png"), self_hosted)
    assert (caught.value.code, caught.value.message) == ("download_timeout", "Downloading the image took too long.")
    assert trickle.done.wait(2)  # the one-thread stand-in is free again for the next test


def test_a_trickling_body_is_abandoned_soon_after_the_deadline(httpserver, self_hosted, settings):
    settings.DOWNLOAD_DEADLINE_SECONDS = 0.05
    trickle = Trickle(picture(), pieces=10, seconds=0.6)
    trickle.serve(httpserver, "/slow.png")
    started = time.monotonic()
    try:
        with pytest.raises(TransientProviderError):
            download_image(httpserver.url_for("/slow.png"), self_hosted)
        assert time.monotonic() - started < 0.3
    finally:
        trickle.done.wait(2)


# --- whole tasks: what the service does with a downloaded link --------------------------------


class LinkingProvider(ScriptedProvider):
    """The scripted test provider, with the download policy a test chooses for its links."""

    policy = DownloadPolicy()

    @property
    def download_policy(self) -> DownloadPolicy:
        return type(self).policy


@pytest.fixture
def linking(settings) -> type[LinkingProvider]:
    settings.EXTRA_PROVIDERS = {"scripted": f"{__name__}.LinkingProvider"}
    LinkingProvider.script, LinkingProvider.calls, LinkingProvider.policy = [], 0, DownloadPolicy()
    return LinkingProvider


def run_linking_task(user) -> Task:
    task = TaskFactory(owner=user, provider="scripted", model="fixed")
    run_task(str(task.pk))
    task.refresh_from_db()
    return task


def test_a_linked_image_is_downloaded_and_stored(user, linking, httpserver, self_hosted, media_root):
    linking.policy = self_hosted
    linking.script = [[GeneratedImage(url=httpserver.url_for("/result.png"), seed=3, request_id="req-1")]]
    httpserver.expect_request("/result.png").respond_with_data(picture(size=(256, 192)), content_type="image/png")
    task = run_linking_task(user)
    assert (task.status, task.provider_request_id) == (Task.Status.COMPLETED, "req-1")
    assert task.ordered_images[0].seed == 3 and len(files_under(media_root)) == 2


def test_a_decompression_bomb_passes_the_download_but_is_never_stored(
    user, linking, httpserver, self_hosted, media_root
):
    bomb = decompression_bomb()
    assert len(bomb) < 100_000
    httpserver.expect_request("/bomb.png").respond_with_data(bomb, content_type="image/png")
    assert download_image(httpserver.url_for("/bomb.png"), self_hosted) == bomb  # looks like a PNG

    linking.policy = self_hosted
    linking.script = [[GeneratedImage(url=httpserver.url_for("/bomb.png"), seed=1)]]
    task = run_linking_task(user)
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "invalid_image", 1)
    assert "too large" in task.error_message
    assert not Image.objects.exists() and files_under(media_root) == []


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_loopback_link_from_a_provider_that_is_not_self_hosted_fails_the_task(
    user, linking, httpserver, media_root, scheme
):
    url = httpserver.url_for("/result.png").replace("localhost", "127.0.0.1").replace("http:", f"{scheme}:")
    httpserver.expect_request("/result.png").respond_with_data(picture(size=(256, 192)), content_type="image/png")
    # The provider's base URL may be this origin (so plain http passes), but it is not SELF_HOSTED.
    linking.policy = DownloadPolicy(allow_private=False, trusted_origin=origin(url) if scheme == "http" else "")
    linking.script = [[GeneratedImage(url=url, seed=1)]]
    task = run_linking_task(user)
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "unsafe_image_url", 1)
    assert task.error_message == "The provider returned an image link to a private network address; it was not fetched."
    assert httpserver.log == [] and not Image.objects.exists() and files_under(media_root) == []


def test_refusals_are_provider_errors_a_person_can_read():
    with pytest.raises(ProviderError) as caught:
        check_url("file:///etc/passwd", DownloadPolicy())
    assert caught.value.message == "The provider returned an image link Atelier does not fetch."
    assert not caught.value.transient
