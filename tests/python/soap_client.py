"""A ШЭП integration team's SOAP client, pointed at shep-sim (tests/tests/soap.rs).

zeep builds its clients only from the WSDL the gateway serves; the business
data is signed with signxml (XMLDSig, enveloped) with keys the test НУЦ issued.
It runs the sync lookup, an application through the async channel with pull
and one with push (this script is the provider's endpoint), status queries,
delivery notifications and refusals, and prints what it saw as JSON for the
Rust test to judge. Progress goes to stderr.

    python3 soap_client.py CONFIG.json
"""

import base64
import datetime
import http.server
import json
import queue
import sys
import threading
import time
import uuid

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    XMLSigner,
)
from signxml.algorithms import SignatureConstructionMethod
from zeep import Client
from zeep.exceptions import Fault
from zeep.plugins import HistoryPlugin, Plugin
from zeep.transports import Transport

BODY_NS = "urn:shep-sim:body:v1"
EXCLUSIVE = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
INCLUSIVE = CanonicalizationMethod.CANONICAL_XML_1_0


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def body(**fields):
    """<body xmlns="urn:shep-sim:body:v1"> with the given children (dicts nest)."""
    root = etree.Element(f"{{{BODY_NS}}}body", nsmap={None: BODY_NS})

    def add(parent, name, value):
        if isinstance(value, dict):
            child = etree.SubElement(parent, f"{{{BODY_NS}}}{name}")
            for key, inner in value.items():
                add(child, key, inner)
        elif isinstance(value, list):
            for item in value:
                add(parent, name, item)
        else:
            etree.SubElement(parent, f"{{{BODY_NS}}}{name}").text = str(value)

    for name, value in fields.items():
        add(root, name, value)
    return root


def sign(root, identity, c14n=EXCLUSIVE):
    key, cert, algorithm = identity
    method = SignatureMethod.RSA_SHA256 if algorithm == "rsa" else SignatureMethod.ECDSA_SHA256
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=method,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=c14n,
    )
    return signer.sign(root, key=key, cert=cert)


def fault_of(call):
    """The ErrorInfo of the fault `call` raises, or None if it succeeds."""
    try:
        call()
    except Fault as fault:
        detail = fault.detail
        code = detail.xpath("string(.//*[local-name()='errorCode'][1])")
        sub = detail.xpath("string(.//*[local-name()='subError']/*[local-name()='errorCode'])")
        return {"errorCode": code, "subError": sub, "message": fault.message}
    return None


class SignedData(Plugin):
    """Puts signed business data into `data` (xs:anyType) as is: zeep would
    write an element given for anyType as text, and any re-serialization
    must leave the signed bytes' canonical form alone. The request carries a
    placeholder `SIGNED:<n>` that this swaps for the n-th signed element."""

    def __init__(self):
        self.pending = {}

    def add(self, element):
        key = f"SIGNED:{len(self.pending)}"
        self.pending[key] = element
        return key

    def egress(self, envelope, http_headers, operation, binding_options):
        for node in envelope.iter("data"):
            if node.text in self.pending:
                signed = self.pending.pop(node.text)
                node.text = None
                node.attrib.clear()
                node.append(signed)
        return envelope, http_headers


class Team:
    def __init__(self, config):
        self.config = config
        self.url = config["url"]
        session = requests.Session()
        # The test НУЦ's root, not a CA bundle from the environment
        # (REQUESTS_CA_BUNDLE would win over `session.verify`).
        session.trust_env = False
        session.verify = config["ca"]
        self.session = session
        self.history = HistoryPlugin()
        self.signed = SignedData()
        transport = Transport(session=session)
        plugins = [self.signed, self.history]
        self.sync = Client(f"{self.url}/bip-sync/?wsdl", transport=transport, plugins=plugins)
        self.channel = Client(f"{self.url}/bip-async/?wsdl", transport=transport, plugins=plugins)
        self.identities = {
            name: (open(key, "rb").read(), open(cert).read(), algorithm)
            for name, (key, cert, algorithm) in config["identities"].items()
        }

    def sender(self, system):
        return {"senderId": system, "password": self.config["passwords"][system]}

    def lookup(self, identity="applicant-rsa", c14n=EXCLUSIVE, service=None, system="pep",
               password=None, tamper=False, gost=False):
        data = sign(
            body(subject={"iin": self.config["applicant_iin"]}, channel="PORTAL",
                 purpose="проверка интеграции"),
            self.identities[identity], c14n,
        )
        if tamper:
            data.find(f"{{{BODY_NS}}}purpose").text = "подменено"
        if gost:
            method = data.xpath("//*[local-name()='SignatureMethod']")[0]
            method.set("Algorithm", "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512")
        sender = self.sender(system)
        if password is not None:
            sender["password"] = password
        return self.sync.service.SendMessage(request={
            "requestInfo": {
                "messageId": "{%s}" % uuid.uuid4(),
                "serviceId": service or self.config["lookup_service"],
                "messageDate": now(),
                "sender": sender,
                "sessionId": str(uuid.uuid4()),
            },
            "requestData": {"data": self.signed.add(data)},
        })

    def submit(self, service, iin, identity, form):
        data = sign(
            body(subject={"iin": iin}, channel="PORTAL",
                 payload={"contentType": "application/json",
                          "data": base64.b64encode(json.dumps(form).encode()).decode()}),
            self.identities[identity],
        )
        message_id = str(uuid.uuid4())
        receipt = self.channel.service.sendMessage(request={
            "messageInfo": {
                "messageId": message_id,
                "serviceId": service,
                "messageType": "REQUEST",
                "messageDate": now(),
                "sender": self.sender("pep"),
            },
            "messageData": {"data": self.signed.add(data)},
        })
        return message_id, receipt

    def report(self, provider, employee, service, application, subject_iin, message_type, report):
        data = sign(
            body(subject={"iin": subject_iin}, channel="PROVIDER_DESK", report=report),
            self.identities[employee],
        )
        return self.channel.service.sendMessage(request={
            "messageInfo": {
                "messageId": str(uuid.uuid4()),
                "correlationId": application,
                "serviceId": service,
                "messageType": message_type,
                "messageDate": now(),
                "sender": self.sender(provider),
            },
            "messageData": {"data": self.signed.add(data)},
        })

    def status(self, message_id, system="pep"):
        return self.channel.service.getMessageStatus(request={
            "messageId": message_id,
            "requestDate": now(),
            "sender": self.sender(system),
        })

    def document(self, employee, content):
        key, cert, _ = self.identities[employee]
        private = serialization.load_pem_private_key(key, password=None)
        certificate = x509.load_pem_x509_certificate(cert.encode())
        value = private.sign(content, padding.PKCS1v15(), hashes.SHA256())
        return {
            "name": "result.txt",
            "contentType": "text/plain",
            "content": base64.b64encode(content).decode(),
            "signature": {
                "algorithm": "RSA_PKCS1_SHA256",
                "certificateDer": base64.b64encode(
                    certificate.public_bytes(serialization.Encoding.DER)).decode(),
                "value": base64.b64encode(value).decode(),
            },
        }


def raw_post(url, path, body, verify):
    response = requests.post(f"{url}{path}", data=body, verify=verify,
                             headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=30)
    root = etree.fromstring(response.content)
    return {
        "http": response.status_code,
        "errorCode": root.xpath("string(//*[local-name()='errorCode'][1])"),
        "subError": root.xpath("string(//*[local-name()='subError']/*[local-name()='errorCode'])"),
    }


class PushEndpoint(http.server.BaseHTTPRequestHandler):
    """The participant's own IAsyncChannelClient: takes sendMessage and
    changeMassageStatusNotification, answers as the client WSDL says."""

    received = queue.Queue()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        root = etree.fromstring(self.rfile.read(length))
        operation = root.xpath("//*[local-name()='Body']/*")[0]
        name = etree.QName(operation).localname
        ns = etree.QName(operation).namespace
        if name == "sendMessage":
            info = operation.xpath(".//*[local-name()='messageInfo']")[0]
            data = operation.xpath(".//*[local-name()='data']/*")[0]
            message_id = info.xpath("string(*[local-name()='messageId'])")
            self.received.put(("sendMessage", {
                "messageId": message_id,
                "serviceId": info.xpath("string(*[local-name()='serviceId'])"),
                "messageType": info.xpath("string(*[local-name()='messageType'])"),
                "correlationId": info.xpath("string(*[local-name()='correlationId'])"),
                "signed": bool(data.xpath(".//*[local-name()='SignatureValue']")),
                "iin": data.xpath("string(.//*[local-name()='iin'])"),
            }))
            answer = (f"<response><messageId>{message_id}</messageId>"
                      f"<responseDate>{now().isoformat()}</responseDate></response>")
        elif name == "changeMassageStatusNotification":
            note = operation.xpath(".//*[local-name()='notification']")[0]
            self.received.put(("notification", {
                "messageId": note.xpath("string(*[local-name()='messageId'])"),
                "state": note.xpath("string(*[local-name()='messageState'])"),
                "status": note.xpath("string(.//*[local-name()='statusCode'])"),
            }))
            answer = f"<response><responseDate>{now().isoformat()}</responseDate></response>"
        else:
            self.send_response(500)
            self.end_headers()
            return
        reply = (f'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
                 f'<ns2:{name}Response xmlns:ns2="{ns}">{answer}</ns2:{name}Response></S:Body></S:Envelope>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def wait_for(predicate, what, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    config = json.load(open(sys.argv[1]))
    out = {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", config["push_port"]), PushEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    team = Team(config)
    push_client = Client(f"{team.url}/bip-async/?wsdl=client", transport=Transport(session=team.session))
    out["client_operations"] = sorted(
        op for binding in push_client.wsdl.bindings.values() for op in binding._operations)

    # 1. Sync lookups: RSA with exclusive c14n, P-256 with inclusive.
    log("sync lookups")
    for name, identity, c14n in [("rsa", "applicant-rsa", EXCLUSIVE), ("p256", "applicant-p256", INCLUSIVE)]:
        response = team.lookup(identity=identity, c14n=c14n)
        received = team.history.last_received["envelope"]
        out[f"lookup_{name}"] = {
            "code": response.responseInfo.status.code,
            "message": response.responseInfo.status.message,
            "iin": received.xpath("string(//*[local-name()='person']/*[local-name()='iin'])"),
            "surname": received.xpath("string(//*[local-name()='person']/*[local-name()='surname'])"),
        }

    # 2. Refusals, by errorCode.
    log("refusals")
    out["refusals"] = {
        "bad_password": fault_of(lambda: team.lookup(password="wrong")),
        "bad_signature": fault_of(lambda: team.lookup(tamper=True)),
        "unknown_service": fault_of(lambda: team.lookup(service="NoSuchService_v1")),
        "gost": fault_of(lambda: team.lookup(gost=True)),
    }
    verify = config["ca"]
    billion_laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                      + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
                      + ']><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>&lol9;</S:Body></S:Envelope>')
    out["hostile"] = {
        "malformed": raw_post(team.url, "/bip-sync/", b"<S:Envelope><unclosed>", verify),
        "billion_laughs": raw_post(team.url, "/bip-sync/", billion_laughs.encode(), verify),
        "oversize": raw_post(team.url, "/bip-async/", b"<x>" + b"a" * config["oversize"] + b"</x>", verify),
    }
    out["serving_after_hostile"] = team.lookup().responseInfo.status.code

    # 3. An application through the async channel, pulled by its provider.
    log("async with pull")
    pull = config["pull"]
    message_id, receipt = team.submit(pull["service"], config["applicant_iin"], "applicant-rsa", pull["form"])
    out["pull_receipt"] = {"messageId": receipt.messageId, "asked": message_id}
    messages = wait_for(lambda: team.channel.service.getMessages(request={
        "serviceId": pull["service"], "sender": team.sender(pull["provider"]), "amount": 10,
    }).messages, "the pulled message")
    message = messages[0]
    out["pulled"] = {
        "messageId": message.messageInfo.messageId,
        "messageType": message.messageInfo.messageType,
        "sender": message.messageInfo.sender.senderId,
        "attempt": {p.key: p.value for p in message.messageInfo.properties}.get("shep.attempt"),
    }
    team.channel.service.sendDeliveryNotification(request={
        "notification": {
            "messageId": message.messageInfo.messageId,
            "serviceId": pull["service"],
            "notificationDate": now(),
            "deliveryStatus": {"receiveStatus": "MESSAGE_ACCEPTED", "statusDate": now()},
        },
        "requestDate": now(),
        "sender": team.sender(pull["provider"]),
    })
    out["pull_after_ack"] = team.status(message_id).messageState
    expected = (now() + datetime.timedelta(days=5)).isoformat()
    team.report(pull["provider"], pull["employee"], pull["service"], message_id, config["applicant_iin"], "UPDATE",
                {"status": "REGISTERED", "registrationNumber": "SOAP-PULL-1", "expectedAt": expected})
    team.report(pull["provider"], pull["employee"], pull["service"], message_id, config["applicant_iin"], "RESPONSE",
                {"status": "REFUSED", "reason": "Нет оснований (проверка SOAP)"})
    status = team.status(message_id)
    out["pull_status"] = {
        "messageId": message_id,
        "state": status.messageState,
        "status": status.status.statusCode,
        "registrationNumber": status.registrationNumber,
    }

    # 4. An application pushed to its provider's endpoint (this script).
    log("async with push")
    push = config["push"]
    message_id, _ = team.submit(push["service"], push["iin"], push["applicant"], push["form"])
    # The endpoint also takes what ШЭП pushes to the portal (the providers'
    # reports on its applications): kept apart.
    responses = []
    while True:
        kind, pushed = PushEndpoint.received.get(timeout=20)
        if kind == "sendMessage" and pushed["messageId"] == message_id:
            break
        if kind == "sendMessage":
            responses.append(pushed)
    out["pushed"] = pushed
    out["pushed_asked"] = message_id
    wait_for(lambda: team.status(message_id).messageState == "DELIVERED", "DELIVERED after the push")
    team.report(push["provider"], push["employee"], push["service"], message_id, push["iin"], "UPDATE",
                {"status": "REGISTERED", "registrationNumber": "SOAP-PUSH-1", "expectedAt": expected})
    team.report(push["provider"], push["employee"], push["service"], message_id, push["iin"], "RESPONSE",
                {"status": "COMPLETED", "result": team.document(push["employee"], "Справка выдана".encode())})
    notified = []

    def completed_notice():
        while not PushEndpoint.received.empty():
            kind, note = PushEndpoint.received.get()
            if kind == "notification" and note["messageId"] == message_id:
                notified.append(note["status"])
            elif kind == "sendMessage":
                responses.append(note)
        return "COMPLETED" in notified

    wait_for(completed_notice, "the COMPLETED status notification")
    out["push_notifications"] = notified
    out["pushed_responses"] = responses
    status = team.status(message_id)
    out["push_status"] = {
        "messageId": message_id,
        "state": status.messageState,
        "status": status.status.statusCode,
        "registrationNumber": status.registrationNumber,
    }
    server.shutdown()
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
