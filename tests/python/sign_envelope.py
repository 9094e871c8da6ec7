#!/usr/bin/env python3
"""Sign a shep-sim envelope in Python, with only `cryptography` and `protobuf`.

    python3 -m pip install cryptography protobuf
    python3 sign_envelope.py --descriptors shep.desc \
        --key applicant.key.pem --cert applicant.cert.pem \
        --message-id 7d4f3c1e-2b8a-4c6d-9e0f-1a2b3c4d5e6f \
        --service guardianship-certificate-esil --iin 850315301235 \
        --date 2026-03-02T10:15:00+05:00 --out envelope.bin
    shep send --envelope envelope.bin

`shep.desc` is the FileDescriptorSet of the shep protos: `shep descriptors --out shep.desc`
(or `protoc --include_imports --descriptor_set_out=shep.desc`). The key is PKCS#8 PEM and
the certificate file holds the signer's certificate, then its chain, as `shep certs issue`
writes them. The signature covers the serialized Body bytes exactly as sent.
"""
import argparse
import sys
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def message_types(descriptor_set_path):
    """The shep message classes, built from the descriptor set at run time."""
    files = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_set_path, "rb") as file:
        files.ParseFromString(file.read())
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:  # dependencies come first in the set
        pool.Add(proto)
    return lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def sign(key, data):
    """The shep SignatureAlgorithm name and the signature over `data`."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ED25519", key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ECDSA_P256_SHA256", key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA_PKCS1_SHA256", key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise SystemExit(f"unsupported key type {type(key).__name__}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--descriptors", required=True, help="FileDescriptorSet of the shep protos")
    parser.add_argument("--key", required=True, help="PKCS#8 PEM private key")
    parser.add_argument("--cert", required=True, help="PEM certificate, then its chain")
    parser.add_argument("--message-id", required=True, help="a fresh UUID")
    parser.add_argument("--service", required=True, help="service id, e.g. guardianship-certificate-esil")
    parser.add_argument("--iin", required=True, help="the applicant's IIN")
    parser.add_argument("--date", required=True, help="message date, RFC 3339")
    parser.add_argument("--sender", default="pep", help="the sending system (default: pep)")
    parser.add_argument("--out", help="where to write the SignedEnvelope (default: stdout)")
    args = parser.parse_args()

    message = message_types(args.descriptors)
    body = message("shep.envelope.v1.Body")(
        message_id=args.message_id,
        service_id=args.service,
        message_type="REQUEST",
        sender={"sender_id": args.sender},
        subject={"iin": args.iin},
        channel="PORTAL",
    )
    date = datetime.fromisoformat(args.date)
    body.message_date.seconds = int(date.timestamp())
    body.message_date.nanos = date.microsecond * 1000

    # Serialize once and sign exactly these bytes: they travel as they are.
    body_bytes = body.SerializeToString()
    with open(args.key, "rb") as file:
        key = load_pem_private_key(file.read(), password=None)
    with open(args.cert, "rb") as file:
        certificate, *chain = x509.load_pem_x509_certificates(file.read())
    algorithm, value = sign(key, body_bytes)

    envelope = message("shep.envelope.v1.SignedEnvelope")(
        body=body_bytes,
        signature={
            "algorithm": algorithm,
            "certificate_der": certificate.public_bytes(Encoding.DER),
            "value": value,
            "chain_der": [ca.public_bytes(Encoding.DER) for ca in chain],
        },
    )
    if args.out:
        with open(args.out, "wb") as file:
            file.write(envelope.SerializeToString())
    else:
        sys.stdout.buffer.write(envelope.SerializeToString())


if __name__ == "__main__":
    main()
