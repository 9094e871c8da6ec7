"""Signing shep-sim envelopes in Python, shared by the scripts beside this file.

Needs only `cryptography`; the message classes come from the caller (built from a
descriptor set file, or from server reflection), so there is no generated code.
The signature covers the serialized Body bytes exactly as they travel.
"""
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key


def message_classes(pool):
    """A function from a full message name to its class in `pool`."""
    from google.protobuf import message_factory

    return lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def load_signer(key_path, cert_path):
    """The PKCS#8 PEM key, and the certificate file's leaf and chain."""
    with open(key_path, "rb") as file:
        key = load_pem_private_key(file.read(), password=None)
    with open(cert_path, "rb") as file:
        certificate, *chain = x509.load_pem_x509_certificates(file.read())
    return key, certificate, chain


def sign(key, data):
    """The shep SignatureAlgorithm name and the signature over `data`."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ED25519", key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ECDSA_P256_SHA256", key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA_PKCS1_SHA256", key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise SystemExit(f"unsupported key type {type(key).__name__}")


def request_body(message, *, message_id, service, iin, date, sender="pep"):
    """A portal REQUEST `shep.envelope.v1.Body` about the person `iin`."""
    body = message("shep.envelope.v1.Body")(
        message_id=message_id,
        service_id=service,
        message_type="REQUEST",
        sender={"sender_id": sender},
        subject={"iin": iin},
        channel="PORTAL",
    )
    body.message_date.seconds = int(date.timestamp())
    body.message_date.nanos = date.microsecond * 1000
    return body


def signed_envelope(message, body, signer):
    """`body` serialized once and signed by `signer` (key, certificate, chain)."""
    key, certificate, chain = signer
    # Serialize once and sign exactly these bytes: they travel as they are.
    body_bytes = body.SerializeToString()
    algorithm, value = sign(key, body_bytes)
    return message("shep.envelope.v1.SignedEnvelope")(
        body=body_bytes,
        signature={
            "algorithm": algorithm,
            "certificate_der": certificate.public_bytes(Encoding.DER),
            "value": value,
            "chain_der": [ca.public_bytes(Encoding.DER) for ca in chain],
        },
    )
