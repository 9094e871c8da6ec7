"""A hostile third-party client, as issue 13 tried the gateway: a provider's
stream and someone's history claimed without a credential, bytes that are not
the RPC's message, and a message over the gateway's size limit. Prints, as
JSON, what came back for each: the gRPC code, and the ErrorInfo reason and
metadata decoded from `grpc-status-details-bin` (google.rpc.Status), then
whether the gateway still answers a health check.

Over TLS (`--ca`) it first calls without a client certificate, then presents
`--cert`/`--key` (a system's transport certificate) for the malformed and
oversized requests, which need a caller the gateway lets in.

Only grpcio and protobuf: no shep code, no .proto file.
"""

import argparse
import json
import os

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def fields(data):
    """The length-delimited fields of a protobuf message: [(number, bytes)]."""
    out, at = [], 0
    while at < len(data):
        key, at = varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, at = varint(data, at)
            out.append((number, data[at:at + length]))
            at += length
        elif wire == 0:
            _, at = varint(data, at)
        else:
            raise ValueError(f"wire type {wire}")
    return out


def varint(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def error_info(error):
    """google.rpc.Status.details (3) -> Any (type_url 1, value 2) -> ErrorInfo
    (reason 1, domain 2, metadata 3 as map entries key 1, value 2)."""
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for number, detail in fields(value):
            if number != 3:
                continue
            parts = dict(fields(detail))
            if not parts.get(1, b"").endswith(b"google.rpc.ErrorInfo"):
                continue
            info = {"reason": "", "domain": "", "metadata": {}}
            for field, content in fields(parts.get(2, b"")):
                if field == 1:
                    info["reason"] = content.decode()
                elif field == 2:
                    info["domain"] = content.decode()
                elif field == 3:
                    entry = dict(fields(content))
                    info["metadata"][entry.get(1, b"").decode()] = entry.get(2, b"").decode()
            return info
    return None


def outcome(call, payload):
    try:
        call(payload, timeout=30)
        return {"code": "OK"}
    except grpc.RpcError as error:
        return {"code": error.code().name, "error_info": error_info(error)}


def message(*fields_):
    """A protobuf message of length-delimited fields: (number, bytes)..."""
    out = bytearray()
    for number, content in fields_:
        out.append(number << 3 | 2)
        n = len(content)
        while True:
            byte = n & 0x7F
            n >>= 7
            out.append(byte | 0x80 if n else byte)
            if not n:
                break
        out += content
    return bytes(out)


def streamed(call, payload):
    """The first answer (or the error) of a bidirectional stream opened with `payload`."""
    try:
        for _ in call(iter([payload]), timeout=30):
            return {"code": "OK"}
        return {"code": "OK"}
    except grpc.RpcError as error:
        return {"code": error.code().name, "error_info": error_info(error)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--big", type=int, default=6 << 20)
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    target = args.target.removeprefix("http://").removeprefix("https://")
    # The client's own limits out of the way: the server's are under test.
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    read = lambda path: open(path, "rb").read()
    result = {}
    if args.ca:
        anonymous = grpc.secure_channel(
            target, grpc.ssl_channel_credentials(root_certificates=read(args.ca)), options=options
        )
        hello = message((1, message((1, b"arm-rshep-sko-esil-edu"))))
        result["subscribe_as_a_provider"] = streamed(
            anonymous.stream_stream("/shep.provider.v1.Provider/Subscribe", None, None), hello
        )
        history = message((1, message((1, b"850315301235"))))
        result["history_of_someone"] = outcome(
            anonymous.unary_unary("/shep.gateway.v1.Gateway/History", None, None), history
        )
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read(args.ca),
            private_key=read(args.key),
            certificate_chain=read(args.cert),
        )
        channel = grpc.secure_channel(target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    raw = lambda method: channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    result |= {
        "random_submit": outcome(raw("/shep.gateway.v1.Gateway/Submit"), os.urandom(512)),
        "random_get_status": outcome(raw("/shep.gateway.v1.Gateway/GetStatus"), b"\xff" * 64),
        # A SignedEnvelope whose `body` (field 1, bytes) is `--big` bytes long:
        # it decodes, but is over the limit before anything looks inside.
        "big_submit": outcome(raw("/shep.gateway.v1.Gateway/Submit"), big_envelope(args.big)),
    }
    health = health_pb2_grpc.HealthStub(channel)
    result["still_serving"] = (
        health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    print(json.dumps(result))


def big_envelope(size):
    body = b"\x00" * size
    # Field 1, wire type 2 (length-delimited): tag 0x0a, then the varint length.
    length = bytearray()
    n = len(body)
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            length.append(byte | 0x80)
        else:
            length.append(byte)
            break
    return b"\x0a" + bytes(length) + body


if __name__ == "__main__":
    main()
