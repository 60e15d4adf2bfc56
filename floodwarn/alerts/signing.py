"""XML digital signatures (XML-DSig) on CAP 1.2 messages.

CAP 1.2 §3.3.2.1 lets an alert carry an enveloped XML Signature (W3C XML Signature Syntax and
Processing) as the last child of ``<alert>``; the official schema admits it there. A receiver
checks the signature with the sender's certificate, which travels inside the signature
(``KeyInfo/X509Data``), against the certificate it trusts.

References
----------
OASIS (2010) Common Alerting Protocol Version 1.2, §3.3.2.1 Digital Signature.
W3C (2013) XML Signature Syntax and Processing Version 1.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml import InvalidInput, InvalidSignature, XMLSigner, XMLVerifier, methods

from floodwarn.errors import InputError

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"


@dataclass(frozen=True)
class CapSigner:
    """A private key and its X.509 certificate (both PEM) that sign CAP messages."""

    key_pem: bytes
    cert_pem: bytes

    @classmethod
    def from_files(cls, key_path: Path, cert_path: Path) -> CapSigner:
        """Read and check a PEM private key (RSA or EC, unencrypted) and its certificate.

        Raises InputError naming the file when one is missing, unreadable, not PEM, or when the
        certificate does not belong to the key.
        """
        key_pem = _read(key_path, "signing key")
        cert_pem = _read(cert_path, "signing certificate")
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as error:
            raise InputError(
                f"{key_path}: not an unencrypted PEM private key ({error}). Export the key "
                "with `openssl pkey -in KEY -out key.pem` (no passphrase)."
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise InputError(f"{key_path}: only RSA and EC keys sign CAP messages here.")
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as error:
            raise InputError(
                f"{cert_path}: not a PEM X.509 certificate ({error})."
            ) from None
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        if cert.public_key().public_bytes(
            serialization.Encoding.DER, public
        ) != key.public_key().public_bytes(serialization.Encoding.DER, public):
            raise InputError(
                f"{cert_path}: this certificate is not for the key in {key_path}; give the "
                "certificate issued for that key."
            )
        return cls(key_pem=key_pem, cert_pem=cert_pem)

    @property
    def _algorithm(self) -> str:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        return "ecdsa-sha256" if isinstance(key, ec.EllipticCurvePrivateKey) else "rsa-sha256"

    def sign(self, cap_xml: bytes) -> bytes:
        """The CAP message with an enveloped RSA/ECDSA-SHA256 signature appended to ``<alert>``.

        Canonicalisation is exclusive C14N; the certificate is embedded in ``KeyInfo``.
        """
        root = etree.fromstring(cap_xml)
        signer = XMLSigner(
            method=methods.enveloped,
            signature_algorithm=self._algorithm,
            digest_algorithm="sha256",
            c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#",
        )
        # CAP has no ID attribute to reference: the signature covers the whole document (URI="").
        signed = signer.sign(root, key=self.key_pem, cert=self.cert_pem.decode("ascii"))
        return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def verify_cap_signature(cap_xml: bytes, cert_pem: bytes) -> bytes:
    """Check a signed CAP message against the trusted certificate; returns the signed content.

    Raises InputError when the message carries no signature or the signature does not verify
    (altered message, other signer).
    """
    root = etree.fromstring(cap_xml)
    if root.find(f"{{{DSIG_NS}}}Signature") is None:
        raise InputError("CAP message: no XML signature (ds:Signature) in <alert>.")
    try:
        result = XMLVerifier().verify(root, x509_cert=cert_pem.decode("ascii"),
                                      expect_references=1)
    except (InvalidSignature, InvalidInput) as error:
        raise InputError(f"CAP message: the XML signature does not verify ({error}).") from None
    assert not isinstance(result, list)  # one reference expected, one result
    return etree.tostring(result.signed_xml)


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise InputError(
            f"{path}: cannot read the CAP {what} ({error.strerror}); set "
            "FLOODWARN_SIGNING_KEY and FLOODWARN_SIGNING_CERT to readable PEM files."
        ) from None
