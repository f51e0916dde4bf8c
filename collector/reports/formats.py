"""GeoReport v2's two representations of each document: XML, the one the spec defines, and JSON.

The spec's XML has no namespace and no schema: it is element names and nesting. Its JSON is the
XML mapped by the Spark convention: an element holding a list of items (`<services>` of
`<service>`s) is a JSON array, an element holding fields is an object, an empty element is null,
true/false and numbers are text in XML. So a document is built once as JSON values, and its XML
is written from them here, with the item element names the spec gives each list.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # the store and the CLI import this module, never the web app: aiohttp is the app's
    from aiohttp import web

#: the element of each item of a list element, as the spec names them
ITEMS = {"services": "service", "service_requests": "request", "errors": "error", "attributes": "attribute",
         "values": "value", "endpoints": "endpoint", "formats": "format"}
XML_TYPE = "text/xml"
JSON_TYPE = "application/json"
_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
#: what XML 1.0 cannot carry at all, even escaped (C0 controls but tab and newlines, U+FFFE/FFFF, surrogates)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> bool:
    return _NOT_XML.search(text) is None


def is_xml(path: str) -> bool:
    """Whether a GeoReport path asks for XML (`.xml`); every other path answers JSON."""
    return path.endswith(".xml")


def to_xml(root: str, doc: Any) -> bytes:
    """`doc` (JSON values) as the spec's XML document whose root element is `root`."""
    element = ET.Element(root)
    _fill(element, doc)
    # a parser reads a raw CR as LF (XML's end-of-line rule): a form's CRLF must come back as it was sent
    return _DECLARATION + ET.tostring(element, encoding="unicode").replace("\r", "&#13;").encode()


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, list):
        item = ITEMS[element.tag]
        for v in value:
            _fill(ET.SubElement(element, item), v)
    elif isinstance(value, dict):
        for key, v in value.items():
            _fill(ET.SubElement(element, key), v)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        # a text stored before such characters were refused is shown with U+FFFD in their place
        element.text = _NOT_XML.sub("\ufffd", str(value))


def document(request: web.Request, root: str, doc: Any, status: int = 200,
             headers: Mapping[str, str] | None = None) -> web.Response:
    """`doc` in the format the path asks for, with the spec's content types (UTF-8 both)."""
    return response(is_xml(request.path), root, doc, status, headers)


def response(xml: bool, root: str, doc: Any, status: int = 200,
             headers: Mapping[str, str] | None = None) -> web.Response:
    from aiohttp import web

    if xml:
        return web.Response(status=status, body=to_xml(root, doc), content_type=XML_TYPE, charset="utf-8",
                            headers=headers)
    return web.Response(status=status, body=orjson.dumps(doc), content_type=JSON_TYPE, charset="utf-8",
                        headers=headers)
