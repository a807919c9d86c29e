"""The admission webhook's certificates, kept by the operator itself.

The operator keeps a small CA and the webhook's serving certificate in one Secret (ca.crt, ca.key,
tls.crt, tls.key and ca-bundle.crt), renews each before it expires, and keeps the
MutatingWebhookConfiguration's caBundle equal to the Secret's bundle, so that the API server
trusts the webhook without cert-manager. Only the leader writes (`ensure`); every replica reads
the Secret (`load`) and serves what it holds.

A renewed serving certificate is signed by the same CA, so the API server's trust does not change.
A renewed CA is added to the bundle next to the old one (until that expires), so replicas that still
serve a certificate of the old CA stay trusted while they pick up the new one.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from slicebroker.operator.kube import JSON, Kube, KubeError

log = logging.getLogger("slicebroker.operator.certs")

ADMISSION = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


@dataclass(frozen=True, slots=True)
class ServingCert:
    cert_pem: bytes
    key_pem: bytes
    bundle_pem: bytes
    """The CA certificates the API server should trust (the current CA first)."""

    @property
    def serial(self) -> int:
        return x509.load_pem_x509_certificate(self.cert_pem).serial_number

    @property
    def not_after(self) -> datetime.datetime:
        return x509.load_pem_x509_certificate(self.cert_pem).not_valid_after_utc

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Writes the certificate and key as files (what `ssl` loads); returns their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = directory / "tls.crt", directory / "tls.key"
        key_file.touch(mode=0o600)
        key_file.write_bytes(self.key_pem)
        cert_file.write_bytes(self.cert_pem)
        return cert_file, key_file


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_ca(common_name: str, validity: datetime.timedelta) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def make_serving_cert(
    ca_pem: bytes, ca_key_pem: bytes, hosts: Sequence[str], validity: datetime.timedelta
) -> tuple[bytes, bytes]:
    """A serving certificate for `hosts` (DNS names or IPs), signed by the CA, never outliving it."""
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the webhook CA key is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + validity, ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


_A_YEAR = datetime.timedelta(days=365)


def local_serving_cert(hosts: Sequence[str], validity: datetime.timedelta = _A_YEAR) -> ServingCert:
    """A fresh CA and a serving certificate for `hosts` that it signs, kept nowhere: for tests and
    benchmarks that register the webhook themselves (`bundle_pem` is the CA to trust)."""
    ca_pem, ca_key_pem = make_ca(f"{hosts[0]}-ca", validity)
    cert_pem, key_pem = make_serving_cert(ca_pem, ca_key_pem, hosts, validity)
    return ServingCert(cert_pem, key_pem, ca_pem)


def _certs_in(bundle: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(bundle) if bundle.strip() else []
    except ValueError:
        return []


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class WebhookCertificates:
    """Creates, renews and reads the webhook's certificates in one Secret."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        secret: str,
        webhook_configuration: str,
        hosts: Sequence[str],
        *,
        ca_validity: datetime.timedelta = datetime.timedelta(days=3650),
        cert_validity: datetime.timedelta = datetime.timedelta(days=90),
        renew_before: datetime.timedelta = datetime.timedelta(days=30),
    ) -> None:
        if not hosts:
            raise ValueError("the webhook certificate needs at least one host name")
        if renew_before >= cert_validity or renew_before >= ca_validity:
            raise ValueError("renew_before must be shorter than the certificate and CA validity")
        self.kube = kube
        self.namespace = namespace
        self.secret = secret
        self.secret_path = f"/api/v1/namespaces/{namespace}/secrets/{secret}"
        self.webhook_configuration = webhook_configuration
        self.hosts = list(hosts)
        self.ca_validity = ca_validity
        self.cert_validity = cert_validity
        self.renew_before = renew_before

    # -- every replica -------------------------------------------------------------------------

    def load(self) -> ServingCert | None:
        """The serving certificate in the Secret, or None while there is none yet."""
        secret = self.kube.get(self.secret_path)
        data = (secret or {}).get("data") or {}
        if not all(k in data for k in ("tls.crt", "tls.key")):
            return None
        return ServingCert(
            base64.b64decode(data["tls.crt"]),
            base64.b64decode(data["tls.key"]),
            base64.b64decode(data.get("ca-bundle.crt") or data.get("ca.crt") or ""),
        )

    # -- the leader ----------------------------------------------------------------------------

    def ensure(self) -> ServingCert:
        """Makes the Secret hold a CA and serving certificate that are not due for renewal, and the
        webhook configuration trust the bundle; returns the serving certificate."""
        secret = self.kube.get(self.secret_path)
        data: dict[str, str] = dict((secret or {}).get("data") or {})
        raw = {k: base64.b64decode(v) for k, v in data.items()}
        now = _now()
        due = now + self.renew_before
        changed = False
        # Keys: ca.crt/ca.key (the current CA), ca-bundle.crt (what the API server trusts),
        # tls.crt/tls.key (what the webhook serves).

        ca_pem, ca_key_pem = raw.get("ca.crt", b""), raw.get("ca.key", b"")
        ca_certs = _certs_in(ca_pem)
        previous = [c for c in _certs_in(raw.get("ca-bundle.crt", b"")) if c.not_valid_after_utc > now]
        new_ca = not ca_certs or not ca_key_pem or ca_certs[0].not_valid_after_utc <= due
        if new_ca:
            ca_pem, ca_key_pem = make_ca(f"{self.webhook_configuration or self.secret}-ca", self.ca_validity)
            log.info("webhook CA %s", "renewed" if ca_certs else "created")
            changed = True
        ca = _certs_in(ca_pem)[0]
        # The bundle: the current CA, then older ones still valid (replicas may serve their certs).
        fingerprint = ca.fingerprint(hashes.SHA256())
        bundle = [ca, *(c for c in previous if c.fingerprint(hashes.SHA256()) != fingerprint)]
        bundle_pem = b"".join(_pem(c) for c in bundle)

        cert_pem, key_pem = raw.get("tls.crt", b""), raw.get("tls.key", b"")
        # A new CA is first only trusted (added to the bundle); the certificate it signs is issued
        # on the next round, once the API server has had a check interval to see the new bundle,
        # unless the certificate in hand cannot be served until then.
        if new_ca:
            reissue = not any(self._cert_current(cert_pem, old, now) for old in previous)
        else:
            reissue = not self._cert_current(cert_pem, ca, due)
        if reissue:
            cert_pem, key_pem = make_serving_cert(ca_pem, ca_key_pem, self.hosts, self.cert_validity)
            log.info("webhook serving certificate %s", "renewed" if raw.get("tls.crt") else "created")
            changed = True
        if bundle_pem != raw.get("ca-bundle.crt", b""):
            changed = True
        if changed:
            self._write_secret(secret, ca_pem, ca_key_pem, cert_pem, key_pem, bundle_pem)
        if self.webhook_configuration:
            self._patch_ca_bundle(bundle_pem)
        return ServingCert(cert_pem, key_pem, bundle_pem)

    def _cert_current(self, cert_pem: bytes, ca: x509.Certificate, due: datetime.datetime) -> bool:
        """Whether `cert_pem` is signed by `ca`, names every host and is valid past `due`."""
        certs = _certs_in(cert_pem)
        if not certs:
            return False
        cert = certs[0]
        if cert.issuer != ca.subject or cert.not_valid_after_utc <= due:
            return False
        try:
            cert.verify_directly_issued_by(ca)
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            return False
        have = {str(n) for n in names.get_values_for_type(x509.DNSName)}
        have |= {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
        return set(self.hosts) <= have

    def _write_secret(
        self, current: JSON | None, ca: bytes, ca_key: bytes, cert: bytes, key: bytes, bundle: bytes
    ) -> None:
        encoded = {
            "ca.crt": ca,
            "ca.key": ca_key,
            "tls.crt": cert,
            "tls.key": key,
            "ca-bundle.crt": bundle,
        }
        metadata: dict[str, Any] = {
            "name": self.secret,
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/managed-by": "slicebroker-operator"},
        }
        body: JSON = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": metadata,
            "data": {k: base64.b64encode(v).decode() for k, v in encoded.items()},
        }
        if current is None:
            self.kube.request("POST", f"/api/v1/namespaces/{self.namespace}/secrets", body=body)
        else:
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
            metadata["labels"] = {**(current["metadata"].get("labels") or {}), **metadata["labels"]}
            self.kube.request("PUT", self.secret_path, body=body)

    def _patch_ca_bundle(self, bundle: bytes) -> None:
        path = f"{ADMISSION}/{self.webhook_configuration}"
        config = self.kube.get(path)
        if config is None:
            log.warning("MutatingWebhookConfiguration %s not found: caBundle not set", self.webhook_configuration)
            return
        wanted = base64.b64encode(bundle).decode()
        hooks = config.get("webhooks") or []
        if all((h.get("clientConfig") or {}).get("caBundle") == wanted for h in hooks):
            return
        for hook in hooks:
            hook.setdefault("clientConfig", {})["caBundle"] = wanted
        self.kube.request("PUT", path, body=config)
        log.info("caBundle of %s updated", self.webhook_configuration)


class FileCertificates:
    """A certificate someone else keeps in files (cert-manager through a mounted Secret): never
    renewed here, only read again, so that a renewed file is served without a restart."""

    def __init__(self, cert_file: str, key_file: str) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)

    def ensure(self) -> ServingCert | None:
        return self.load()

    def load(self) -> ServingCert | None:
        try:
            return ServingCert(self.cert_file.read_bytes(), self.key_file.read_bytes(), b"")
        except OSError:
            return None


class CertificateSource(Protocol):
    def ensure(self) -> ServingCert | None: ...

    def load(self) -> ServingCert | None: ...


class CertificateKeeper:
    """Runs `WebhookCertificates` on a timer: the leader renews, every replica reloads what the
    Secret holds into its webhook server when it changes."""

    def __init__(
        self,
        certificates: CertificateSource,
        is_leader: Callable[[], bool],
        on_change: Callable[[ServingCert], None],
        check_s: float = 60.0,
    ) -> None:
        self.certificates = certificates
        self.is_leader = is_leader
        self.on_change = on_change
        self.check_s = check_s
        self.current: ServingCert | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> ServingCert | None:
        """One round: renew (as leader), then load and hand a changed certificate on."""
        try:
            if self.is_leader():
                self.certificates.ensure()
            found = self.certificates.load()
        except KubeError as err:
            # 409: the other replica wrote first (a leader change); the next round reads its work.
            if err.status != 409:
                log.warning("webhook certificates: %s", err)
            return self.current
        if found is not None and found != self.current:
            self.current = found
            self.on_change(found)
        return self.current

    def wait_for_certificate(self, timeout_s: float, poll_s: float = 0.5) -> ServingCert | None:
        """Checks until a certificate exists (a fresh install: the leader makes the first one)."""
        deadline = threading.Event()
        timer = threading.Timer(timeout_s, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                if self.check() is not None:
                    return self.current
                deadline.wait(poll_s)
            return None
        finally:
            timer.cancel()

    def start(self) -> CertificateKeeper:
        self._thread = threading.Thread(target=self._run, name="slicebroker-webhook-certs", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.check_s):
            try:
                self.check()
            except Exception:
                log.exception("webhook certificate check failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
