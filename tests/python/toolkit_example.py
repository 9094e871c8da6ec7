#!/usr/bin/env python3
"""The worked example of docs/TESTING.md: a Python test against shep-sim.

    python3 -m pip install grpcio grpcio-reflection protobuf cryptography
    python3 toolkit_example.py --target 127.0.0.1:7700 --token-file .shep/admin-token \
        --key .shep/identities/applicant.key.pem --cert .shep/identities/applicant.cert.pem \
        --iin 850315301235

1. sets the world up over the admin API as JSON over HTTP (standard library only): in its own
   session, ГБД ФЛ fails the first lookup;
2. runs "the system under test": two signed lookups over gRPC, the messages built by reflection,
   each carrying the session header;
3. asks the gateway to verify that exactly two ГБД ФЛ lookups happened in the session, and for the
   unused report;
4. resets the session.

It prints one JSON object with what each step saw.
"""
import argparse
import json
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

import grpc
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from shep_signing import load_signer, message_classes, request_body, signed_envelope


class Admin:
    """`POST /admin/v1/<Method>` with a JSON body, in one session."""

    def __init__(self, base, token, session):
        self.base, self.token, self.session = base, token, session

    def __call__(self, method, body=None, token=None):
        request = urllib.request.Request(
            f"{self.base}/admin/v1/{method}",
            data=json.dumps(body or {}).encode(),
            headers={
                "authorization": f"Bearer {token if token is not None else self.token}",
                "x-shep-session": self.session,
                "content-type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)


def lookup(channel, pool, signer, iin, session):
    """The system under test: a signed GbdflInfoByIin_v1 lookup in `session`."""
    message = message_classes(pool)
    body = request_body(
        message,
        message_id=str(uuid.uuid4()),
        service="GbdflInfoByIin_v1",
        iin=iin,
        date=datetime.now(timezone.utc),
    )
    envelope = signed_envelope(message, body, signer)
    method = pool.FindServiceByName("shep.gateway.v1.Gateway").FindMethodByName("Call")
    call = channel.unary_unary(
        "/shep.gateway.v1.Gateway/Call",
        request_serializer=lambda raw: raw,
        response_deserializer=message(method.output_type.full_name).FromString,
    )
    try:
        call(envelope.SerializeToString(), metadata=[("x-shep-session", session)], timeout=10)
        return {"code": "OK"}
    except grpc.RpcError as error:
        return {"code": error.code().name, "details": error.details()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--iin", required=True)
    args = parser.parse_args()

    session = f"py-{uuid.uuid4()}"
    admin = Admin(f"http://{args.target}", open(args.token_file).read().strip(), session)
    seen = {"session": session}

    # 0. Without the credential nothing changes.
    seen["unauthenticated"] = admin("ListFaults", token="wrong")

    # 1. The world: ГБД ФЛ fails the first lookup of this session.
    seen["fault"] = admin(
        "AddFault",
        {
            "target": {"registry": "gbdfl"},
            "error": {"code": "UNAVAILABLE", "message": "ГБД ФЛ недоступна"},
            "times": 1,
        },
    )

    # 2. The system under test, twice.
    with grpc.insecure_channel(args.target) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        signer = load_signer(args.key, args.cert)
        seen["lookups"] = [lookup(channel, pool, signer, args.iin, session) for _ in range(2)]

    # 3. What was exchanged.
    seen["verify"] = admin(
        "VerifyExchanges", {"filter": {"rpc": "registry/gbdfl"}, "exactly": 2}
    )
    seen["unused"] = admin("Unused")

    # 4. Clean up this session only.
    seen["reset"] = admin("Reset")
    print(json.dumps(seen, ensure_ascii=False))


if __name__ == "__main__":
    main()
