"""mTLS on every service: a certificate from the mesh's CA is required; plaintext only when asked for."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from slicebroker.accounting.main import build as build_accounting
from slicebroker.accounting.settings import AccountingSettings
from slicebroker.runtime.server import start_server
from slicebroker.runtime.tls import channel_credentials, make_local_pki
from slicebroker.v1 import accounting_pb2, accounting_pb2_grpc


def tls_settings(redis_url: str, pki_dir: Path) -> AccountingSettings:
    mesh = make_local_pki(pki_dir)["mesh"]
    return AccountingSettings(
        listen="127.0.0.1:0",
        redis_url=redis_url,
        tls_ca_file=mesh.ca,
        tls_cert_file=mesh.cert,
        tls_key_file=mesh.key,
        allow_plaintext=False,
    )


async def usage(channel: grpc.aio.Channel) -> None:
    await accounting_pb2_grpc.AccountingServiceStub(channel).GetUsage(accounting_pb2.GetUsageRequest(), timeout=3)


async def test_a_client_certificate_from_the_mesh_ca_is_required(start_service, redis_url: str, tmp_path: Path) -> None:
    running = await start_service(build_accounting, tls_settings(redis_url, tmp_path / "pki"))
    client = make_local_pki(tmp_path / "pki")["client"]
    async with grpc.aio.secure_channel(running.address, channel_credentials(client)) as channel:
        await usage(channel)

    # No client certificate: the handshake fails.
    ca_only = grpc.ssl_channel_credentials(root_certificates=client.ca.read_bytes())
    async with grpc.aio.secure_channel(running.address, ca_only) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await usage(channel)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE

    # A certificate from another CA: refused too.
    stranger = make_local_pki(tmp_path / "other-pki")["client"]
    mixed = grpc.ssl_channel_credentials(
        root_certificates=client.ca.read_bytes(),
        private_key=stranger.key.read_bytes(),
        certificate_chain=stranger.cert.read_bytes(),
    )
    async with grpc.aio.secure_channel(running.address, mixed) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await usage(channel)

    # Plaintext: refused.
    async with grpc.aio.insecure_channel(running.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await usage(channel)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_plaintext_must_be_asked_for(redis_url: str) -> None:
    settings = AccountingSettings(listen="127.0.0.1:0", redis_url=redis_url, allow_plaintext=False)
    with pytest.raises(ValueError, match="ALLOW_PLAINTEXT"):
        await start_server(await build_accounting(settings), settings)


def test_half_a_tls_configuration_is_refused(tmp_path: Path) -> None:
    mesh = make_local_pki(tmp_path)["mesh"]
    settings = AccountingSettings(tls_ca_file=mesh.ca, tls_cert_file=mesh.cert)
    with pytest.raises(ValueError, match="all three"):
        settings.tls()
