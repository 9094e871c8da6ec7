#!/usr/bin/env python3
"""Talk to a shep-sim gateway as a third-party gRPC client with no .proto files.

    python3 -m pip install grpcio grpcio-reflection grpcio-health-checking protobuf cryptography
    python3 reflect_and_call.py --target 127.0.0.1:7700 \
        --key .shep/identities/applicant.key.pem --cert .shep/identities/applicant.cert.pem \
        --iin 850315301235

It lists the services by server reflection (v1, and v1alpha, the version grpcio-reflection
speaks), builds the message classes from the reflected descriptors, checks the health of
the gateway and of ГБД ФЛ (`shep.registry.v1.Registry/gbdfl`), and makes a signed sync
lookup through `shep.gateway.v1.Gateway/Call`. It prints one JSON object:

    {"services": {"v1": [...], "v1alpha": [...]}, "v1_file": "shep/gateway/v1/gateway.proto",
     "health": {"": "SERVING", ...}, "call": {"response_info": ..., "lookup": ...}}

and exits 1 with {"error": ...} when the call is refused.
"""
import argparse
import json
import sys
import uuid
from datetime import datetime, timezone

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from shep_signing import load_signer, message_classes, request_body, signed_envelope

# grpcio-reflection ships only the v1alpha stubs. grpc.reflection.v1 is the same
# proto under a new package name, so its messages are byte-for-byte the v1alpha
# ones and only the method path differs.
REFLECTION_V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


def reflect_v1(channel, request):
    """One request on a v1 reflection stream, and its answer."""
    info = channel.stream_stream(
        REFLECTION_V1,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    (response,) = list(info(iter([request]), timeout=10))
    if response.HasField("error_response"):
        raise SystemExit(f"reflection v1 refused {request}: {response.error_response}")
    return response


def services_v1(channel):
    response = reflect_v1(channel, reflection_pb2.ServerReflectionRequest(list_services=""))
    return [service.name for service in response.list_services_response.service]


def file_v1(channel, symbol):
    """The name of the file defining `symbol`, as reflection v1 serves it."""
    response = reflect_v1(
        channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
    )
    proto = descriptor_pb2.FileDescriptorProto()
    proto.ParseFromString(response.file_descriptor_response.file_descriptor_proto[0])
    return proto.name


def health(channel, service):
    stub = health_pb2_grpc.HealthStub(channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def call(channel, pool, envelope_bytes):
    """`shep.gateway.v1.Gateway/Call`, typed by the reflected method descriptor."""
    method = pool.FindServiceByName("shep.gateway.v1.Gateway").FindMethodByName("Call")
    response_class = message_classes(pool)(method.output_type.full_name)
    stub = channel.unary_unary(
        "/shep.gateway.v1.Gateway/Call",
        request_serializer=lambda raw: raw,
        response_deserializer=response_class.FromString,
    )
    return stub(envelope_bytes, timeout=10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port or http://host:port")
    parser.add_argument("--key", required=True, help="PKCS#8 PEM private key")
    parser.add_argument("--cert", required=True, help="PEM certificate, then its chain")
    parser.add_argument("--iin", required=True, help="the person to look up (the signer's IIN)")
    parser.add_argument("--service", default="GbdflInfoByIin_v1", help="a lookup service id")
    parser.add_argument("--sender", default="pep", help="the sending system (default: pep)")
    args = parser.parse_args()

    target = args.target.removeprefix("http://")
    with grpc.insecure_channel(target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        result = {
            "services": {
                "v1": sorted(services_v1(channel)),
                "v1alpha": sorted(database.get_services()),
            },
            "v1_file": file_v1(channel, "shep.gateway.v1.Gateway"),
            "health": {
                name: health(channel, name) for name in ["", "shep.registry.v1.Registry/gbdfl"]
            },
        }

        # Every class below comes from descriptors the gateway served (v1alpha).
        pool = descriptor_pool.DescriptorPool(database)
        message = message_classes(pool)
        body = request_body(
            message,
            message_id=str(uuid.uuid4()),
            service=args.service,
            iin=args.iin,
            date=datetime.now(timezone.utc),
            sender=args.sender,
        )
        envelope = signed_envelope(message, body, load_signer(args.key, args.cert))
        try:
            response = call(channel, pool, envelope.SerializeToString())
        except grpc.RpcError as error:
            result["error"] = {"code": error.code().name, "details": error.details()}
            print(json.dumps(result, ensure_ascii=False))
            sys.exit(1)
        result["call"] = json_format.MessageToDict(response, preserving_proto_field_name=True)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
