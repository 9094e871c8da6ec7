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
writes them. The signature covers the serialized Body bytes exactly as sent; the signing
itself is in shep_signing.py beside this file.
"""
import argparse
import sys
from datetime import datetime

from google.protobuf import descriptor_pb2, descriptor_pool

from shep_signing import load_signer, message_classes, request_body, signed_envelope


def message_types(descriptor_set_path):
    """The shep message classes, built from the descriptor set at run time."""
    files = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_set_path, "rb") as file:
        files.ParseFromString(file.read())
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:  # dependencies come first in the set
        pool.Add(proto)
    return message_classes(pool)


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
    body = request_body(
        message,
        message_id=args.message_id,
        service=args.service,
        iin=args.iin,
        date=datetime.fromisoformat(args.date),
        sender=args.sender,
    )
    envelope = signed_envelope(message, body, load_signer(args.key, args.cert))
    if args.out:
        with open(args.out, "wb") as file:
            file.write(envelope.SerializeToString())
    else:
        sys.stdout.buffer.write(envelope.SerializeToString())


if __name__ == "__main__":
    main()
