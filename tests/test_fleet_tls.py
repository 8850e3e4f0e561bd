"""TLS to the fleet server: with a CA configured the kiosk insists on ``verify-full``; a
server whose certificate does not chain to that CA, or names another host, is refused."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceguard.fleet.config import load_config, read_password
from faceguard.fleet.server_schema import connect, init_server
from tests.conftest import make_data_dir, run_cli

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_ca(tag: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(f"FaceGuard test CA {tag}"))
            .issuer_name(_name(f"FaceGuard test CA {tag}")).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(1))
            .not_valid_after(now + dt.timedelta(2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def server_cert(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate,
                names: list[x509.GeneralName]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("fleet server"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(1))
            .not_valid_after(now + dt.timedelta(2))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@pytest.fixture(scope="module")
def tls_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path, Path]]:
    pytest.importorskip("psycopg")
    from tests.pg_cluster import PgCluster, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    folder = tmp_path_factory.mktemp("tls")
    ca_key, ca = make_ca("right")
    _, other = make_ca("wrong")
    right, wrong = folder / "ca.pem", folder / "other-ca.pem"
    right.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    wrong.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    tls = server_cert(ca_key, ca, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cluster = PgCluster(bin_dir, tls=tls)
    yield cluster, right, wrong
    cluster.close()


def test_a_kiosk_with_a_ca_talks_tls_verify_full_and_refuses_an_unknown_ca(
        tls_setup: tuple[object, Path, Path], tmp_path: Path, test_embedder_env: object,
        capsys: pytest.CaptureFixture) -> None:
    cluster, right, wrong = tls_setup
    dsn = cluster.new_database()  # type: ignore[attr-defined]
    init_server(dsn)
    folder = make_data_dir(tmp_path)
    assert run_cli(folder, "kiosk", "join", "--dsn", dsn, "--name", "tls door",
                   "--ca", str(right)) == 0
    assert run_cli(folder, "sync") == 0
    config = load_config(folder)
    assert config is not None and config.sslmode == "verify-full"
    with connect(config.conninfo(read_password(folder))) as conn:  # as the kiosk connects
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                            ).fetchone() == (True,)
    # the same kiosk given another CA: the server's certificate does not chain to it
    raw = (folder / "fleet.json").read_text().replace(str(right), str(wrong))
    (folder / "fleet.json").write_text(raw)
    capsys.readouterr()
    assert run_cli(folder, "sync") == 1
    assert "certificate verify failed" in capsys.readouterr().err


def test_verify_full_refuses_a_certificate_for_another_host(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
        test_embedder_env: object, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("psycopg")
    from tests.pg_cluster import PgCluster, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    ca_key, ca = make_ca("host")
    pem = tmp_path / "ca.pem"
    pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cluster = PgCluster(bin_dir, tls=server_cert(ca_key, ca, [x509.DNSName("db.example")]))
    try:
        dsn = cluster.new_database()
        init_server(dsn)
        folder = make_data_dir(tmp_path)
        capsys.readouterr()
        assert run_cli(folder, "kiosk", "join", "--dsn", dsn, "--name", "x",
                       "--ca", str(pem)) == 0  # the admin DSN itself is not verify-full
        assert run_cli(folder, "sync") == 1
        err = capsys.readouterr().err
        assert "does not match host name" in err or "server certificate" in err, err
    finally:
        cluster.close()
