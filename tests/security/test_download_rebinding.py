"""The downloader connects to the address it vetted (security review, finding 11).

A name that answers a public address when it is checked and loopback when it is used (DNS
rebinding) used to pass the check and then be fetched from loopback, because requests
resolved the name a second time. The resolver here is socket.getaddrinfo itself, stubbed for
one name, so any second lookup (the downloader's or urllib3's) sees the loopback answer; the
sockets opened are recorded at urllib3's create_connection, where every connection starts.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3.util.connection
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer

from generator.providers import PermanentProviderError, TransientProviderError, http
from generator.providers.http import DownloadPolicy, download_image

from ..test_downloader import picture

NAME = "rebind.test"
PUBLIC = "93.184.216.34"  # what the name answers first: a global address, so it is vetted


class Resolver:
    """getaddrinfo for NAME: `answers` in turn (the last one repeats), other names as usual."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *answers: str) -> None:
        self.answers, self.asked = list(answers), 0
        self.real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list:
        if host != NAME:
            return self.real(host, port, *args, **kwargs)
        address = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))]


class Sockets:
    """Every (host, port) a connection is opened to. PUBLIC stands for a real host on the
    internet: it is either the local stand-in server (`public_is_up`) or refuses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, public_is_up: bool) -> None:
        self.opened: list[tuple[str, int]] = []
        self.public_is_up = public_is_up
        self.real = urllib3.util.connection.create_connection
        monkeypatch.setattr(urllib3.util.connection, "create_connection", self.create_connection)

    def create_connection(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        self.opened.append(address)
        host, port = address
        if host == PUBLIC:
            if not self.public_is_up:
                raise ConnectionRefusedError(f"{PUBLIC}:{port} refused")
            return self.real(("127.0.0.1", port), *args, **kwargs)
        return self.real(address, *args, **kwargs)


def rebinding_policy(port: int) -> DownloadPolicy:
    # The audit's case: the name is the operator's plain-http origin, but private addresses
    # are not allowed (the provider is not marked self-hosted).
    return DownloadPolicy(allow_private=False, trusted_origin=f"http://{NAME}:{port}")


def test_the_connection_goes_to_the_vetted_address_with_the_name_in_the_host_header(httpserver, monkeypatch):
    resolver = Resolver(monkeypatch, PUBLIC, "127.0.0.1")
    sockets = Sockets(monkeypatch, public_is_up=True)
    data = picture()
    httpserver.expect_request("/ok.png").respond_with_data(data, content_type="image/png")
    port = httpserver.port

    assert download_image(f"http://{NAME}:{port}/ok.png?sig=1", rebinding_policy(port)) == data

    assert sockets.opened == [(PUBLIC, port)]  # the vetted address, not the name
    assert resolver.asked == 1  # resolved once: nothing could answer differently later
    [(request, _response)] = httpserver.log
    assert request.headers["Host"] == f"{NAME}:{port}" and request.query_string == b"sig=1"


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_name_that_rebinds_to_loopback_never_reaches_loopback(httpserver, monkeypatch, scheme):
    Resolver(monkeypatch, PUBLIC, "127.0.0.1")
    sockets = Sockets(monkeypatch, public_is_up=False)
    httpserver.expect_request("/ok.png").respond_with_data(picture(), content_type="image/png")
    port = httpserver.port

    with pytest.raises(TransientProviderError) as caught:
        download_image(f"{scheme}://{NAME}:{port}/ok.png", rebinding_policy(port))

    assert caught.value.code == "download_failed"
    assert sockets.opened == [(PUBLIC, port)]
    assert httpserver.log == []


def test_every_address_is_vetted_before_any_is_used(httpserver, monkeypatch):
    monkeypatch.setattr(http, "resolve", lambda host, port: (PUBLIC, "127.0.0.1"))
    sockets = Sockets(monkeypatch, public_is_up=True)
    with pytest.raises(PermanentProviderError) as caught:
        download_image(f"https://{NAME}/ok.png", DownloadPolicy())
    assert caught.value.code == "unsafe_image_url" and sockets.opened == []


def test_the_next_vetted_address_is_tried_when_one_refuses(httpserver, monkeypatch):
    port = httpserver.port
    # A self-hosted box with two addresses, the first of them down.
    monkeypatch.setattr(http, "resolve", lambda host, p: ("127.0.0.2", "127.0.0.1"))
    sockets = Sockets(monkeypatch, public_is_up=True)
    httpserver.expect_request("/ok.png").respond_with_data(picture(), content_type="image/png")
    policy = DownloadPolicy(allow_private=True, trusted_origin=f"http://{NAME}:{port}")
    assert download_image(f"http://{NAME}:{port}/ok.png", policy) == picture()
    assert sockets.opened == [("127.0.0.2", port), ("127.0.0.1", port)]


# --- TLS still speaks to the name ------------------------------------------------------------


def _certificate(
    common_name: str, issuer_key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None, key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )
    if issuer is None:  # the authority
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class TLSServer:
    """A local https stand-in with a certificate for `name` from a throwaway authority."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("Atelier test CA", ca_key, None, ca_key)
        leaf = _certificate(name, ca_key, ca.subject, key)
        self.ca_file = tmp_path / "ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        chain, key_file = tmp_path / "leaf.pem", tmp_path / "leaf.key"
        chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key_file)
        self.server_names: list[str | None] = []
        context.sni_callback = lambda sock, server_name, ctx: self.server_names.append(server_name)
        self.server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)


@pytest.fixture
def tls_server(tmp_path, monkeypatch) -> Iterator[TLSServer]:
    server = TLSServer(tmp_path, NAME)
    monkeypatch.setattr(http, "CA_BUNDLE", str(server.ca_file))
    server.server.start()
    yield server
    server.server.clear()
    server.server.stop()


def test_tls_sends_the_name_and_checks_the_certificate_for_it(tls_server, monkeypatch):
    Resolver(monkeypatch, "127.0.0.1")
    sockets = Sockets(monkeypatch, public_is_up=False)
    tls_server.server.expect_request("/ok.png").respond_with_data(picture(), content_type="image/png")
    port = tls_server.server.port

    assert download_image(f"https://{NAME}:{port}/ok.png", DownloadPolicy(allow_private=True)) == picture()

    assert sockets.opened == [("127.0.0.1", port)]
    assert tls_server.server_names == [NAME]
    assert tls_server.server.log[0][0].headers["Host"] == f"{NAME}:{port}"


def test_a_certificate_for_another_name_is_refused_although_the_address_was_vetted(tls_server, monkeypatch):
    other = "other.test"  # resolves to the server too, which only has a certificate for NAME
    monkeypatch.setattr(http, "resolve", lambda host, port: ("127.0.0.1",))
    tls_server.server.expect_request("/ok.png").respond_with_data(picture(), content_type="image/png")
    port = tls_server.server.port

    with pytest.raises(TransientProviderError) as caught:
        download_image(f"https://{other}:{port}/ok.png", DownloadPolicy(allow_private=True))

    assert caught.value.code == "download_failed"
    assert isinstance(caught.value.__cause__, urllib3.exceptions.SSLError)
    assert tls_server.server.log == []
