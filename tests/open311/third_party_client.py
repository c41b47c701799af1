#!/usr/bin/env python3
"""A third-party GeoReport v2 client against a live mashangban server.

Usage: python3 tests/open311/third_party_client.py BASE_URL API_KEY
  BASE_URL  the GeoReport endpoint, e.g. http://127.0.0.1:8080/open311/v2
  API_KEY   an Open311 API key configured under [open311.api_keys]

It uses `georeport` (PyPI, 0.3.1: "Python wrapper for the Open311 GeoReport v2 API"), as an
outside developer would, to list the services, read a service definition and read the
request back, in JSON and in XML. That library has no method to submit a request, so the
submission is posted with `requests` (the HTTP library `georeport` itself uses), in the form
encoding GeoReport prescribes. (`three` 0.8.0, the other GeoReport wrapper on PyPI, is
Python 2 only and does not import on Python 3.)

Prints OK and exits 0 when every step checks out; exits 1 naming the step otherwise.
"""

import sys

import requests
from georeport import GeoReport

SERVICE = "service-center.assisted-handling"


def check(condition, step):
    if not condition:
        print(f"FAILED: {step}")
        sys.exit(1)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    base, api_key = sys.argv[1].rstrip("/"), sys.argv[2]
    client = GeoReport(base, api_key=api_key)
    xml_client = GeoReport(base, output_format="xml")

    # 1. The services, in JSON and XML.
    services = client.get_service_list()
    codes = [s["service_code"] for s in services]
    check(SERVICE in codes and "market.establish" in codes, "services.json lists the matters")
    check(all(s["metadata"] is True for s in services), "every service has a definition")
    xml_services = xml_client.get_service_list()
    check(len(xml_services) == len(services), "services.xml lists as many as services.json")
    check(xml_services[0]["service_code"] == codes[0], "services.xml in the same order")

    # 2. A service definition.
    definition = client.get_service_definition(SERVICE)
    check(definition["service_code"] == SERVICE, "services/{code}.json names the service")
    attributes = {a["code"]: a for a in definition["attributes"]}
    check(attributes["question"]["datatype"] == "text", "question is a text attribute")
    check(attributes["question"]["required"] is True, "question is required")
    xml_definition = xml_client.get_service_definition("market.establish")
    xml_codes = [a["code"] for a in xml_definition["attributes"]["attribute"]]
    check("material.premises_proof" in xml_codes, "materials are attributes in XML too")

    # 3. Submit (form-encoded POST, as GeoReport prescribes).
    answer = requests.post(
        f"{base}/requests.json",
        data={
            "api_key": api_key,
            "service_code": SERVICE,
            "email": "client@example.com",
            "phone": "13800138000",
            "description": "第三方客户端提交的咨询",
            "lat": "31.2397",
            "long": "121.3980",
        },
        timeout=30,
    )
    check(answer.status_code == 200, f"POST requests.json answers 200 ({answer.status_code} {answer.text})")
    created = answer.json()
    number = created[0]["service_request_id"]
    check(number.startswith("PT"), "the answer carries the request number")

    # 4. Read it back: the single request, and in the list.
    request = client.get_service_request(number)
    check(request["service_request_id"] == number, "requests/{id}.json finds it")
    check(request["status"] == "open", "a new request is open")
    check(request["service_code"] == SERVICE, "with its service code")
    check(request["description"] is None, "without a key, what the enterprise wrote stays private")
    listed = client.get_service_requests(service_request_id=number)
    check([r["service_request_id"] for r in listed] == [number], "requests.json?service_request_id=")
    xml_request = xml_client.get_service_request(number)
    check(xml_request["service_request_id"] == number, "requests/{id}.xml finds it")
    check(xml_request["status"] == "open", "open in XML too")

    # 5. Errors are GeoReport's error body.
    wrong = requests.post(f"{base}/requests.json", data={"api_key": "wrong", "service_code": SERVICE}, timeout=30)
    check(wrong.status_code == 403 and wrong.json()[0]["code"] == 403, "a wrong api_key is 403")

    print(f"OK: {len(services)} services, request {number} submitted and read back")


if __name__ == "__main__":
    main()
