"""XML-DSig on CAP messages: schema-valid, verifiable, and tampering is caught."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from floodwarn.alerts.cap import CAP_NS, validate_cap
from floodwarn.alerts.signing import DSIG_NS, CapSigner, verify_cap_signature
from floodwarn.errors import InputError

CAP = f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="{CAP_NS}"><identifier>floodwarn-1-SV0101-0</identifier>
<sender>floodwarn@proteccioncivil.gob.sv</sender><sent>2020-06-01T06:00:00-00:00</sent>
<status>Exercise</status><msgType>Alert</msgType><scope>Public</scope>
<info><language>es-SV</language><category>Met</category><event>Inundación</event>
<responseType>Evacuate</responseType><urgency>Immediate</urgency><severity>Extreme</severity>
<certainty>Likely</certainty><headline>Alerta roja: Apopa</headline>
<area><areaDesc>Apopa, San Salvador</areaDesc></area></info></alert>""".encode()


def write_key_pair(folder: Path, *, curve: bool = False) -> tuple[Path, Path]:
    """A private key and a self-signed certificate for it, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1()) if curve else rsa.generate_private_key(
        public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DGPC floodwarn test")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.mark.parametrize("curve", [False, True], ids=["rsa", "ecdsa"])
def test_signed_message_is_schema_valid_and_verifies(tmp_path, curve):
    signer = CapSigner.from_files(*write_key_pair(tmp_path, curve=curve))
    signed = signer.sign(CAP)
    validate_cap(signed)  # the official schema admits ds:Signature as <alert>'s last child
    root = etree.fromstring(signed)
    assert root[-1].tag == f"{{{DSIG_NS}}}Signature"
    method = root[-1].find(f"{{{DSIG_NS}}}SignedInfo/{{{DSIG_NS}}}SignatureMethod")
    assert method.get("Algorithm").endswith("ecdsa-sha256" if curve else "rsa-sha256")
    content = etree.fromstring(verify_cap_signature(signed, signer.cert_pem))
    assert content.findtext(f"{{{CAP_NS}}}identifier") == "floodwarn-1-SV0101-0"


def test_any_change_to_a_signed_message_is_caught(tmp_path):
    signer = CapSigner.from_files(*write_key_pair(tmp_path))
    signed = signer.sign(CAP)
    for before, after in [(b"<severity>Extreme", b"<severity>Minor"),
                          (b"Apopa, San Salvador", b"Apopa"),
                          (b"<status>Exercise", b"<status>Actual")]:
        with pytest.raises(InputError, match="does not verify"):
            verify_cap_signature(signed.replace(before, after), signer.cert_pem)


def test_signature_from_another_key_is_refused(tmp_path):
    ours = CapSigner.from_files(*write_key_pair(tmp_path / "ours"))
    theirs = CapSigner.from_files(*write_key_pair(tmp_path / "theirs"))
    with pytest.raises(InputError, match="does not verify"):
        verify_cap_signature(theirs.sign(CAP), ours.cert_pem)
    with pytest.raises(InputError, match="no XML signature"):
        verify_cap_signature(CAP, ours.cert_pem)


def test_bad_key_material_is_named(tmp_path):
    key, cert = write_key_pair(tmp_path / "a")
    _, other_cert = write_key_pair(tmp_path / "b")
    with pytest.raises(InputError, match="not for the key"):
        CapSigner.from_files(key, other_cert)
    with pytest.raises(InputError, match="cannot read"):
        CapSigner.from_files(tmp_path / "missing.pem", cert)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InputError, match=r"garbage\.pem: not an unencrypted PEM private key"):
        CapSigner.from_files(garbage, cert)
    with pytest.raises(InputError, match=r"not a PEM X\.509 certificate"):
        CapSigner.from_files(key, garbage)
