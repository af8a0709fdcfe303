"""JSON bodies with a nesting limit, for the channel API and the carrier webhook alike.

`json.loads` recurses once per level of arrays and objects: 50,000 `[` raise RecursionError,
which is no ValueError, so DRF's parser let it through as a 500, and where the recursion
limit falls depends on how deep the stack already is. Our bodies nest three levels; the text
is measured before it is parsed, so anything deeper than `MAX_JSON_DEPTH` is a 400, always.
"""

import json
import re
from itertools import accumulate

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json as drf_json

MAX_JSON_DEPTH = 32

# A JSON string, escapes included; an unterminated one runs to the end of the text (the
# closing quote is optional), so each quote is scanned once and the whole pass is linear.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JSONTooDeep(ParseError):
    default_code = "json_too_deep"

    def __init__(self):
        super().__init__(_("JSON nested too deeply: at most %(depth)d levels of arrays and objects.") % {"depth": MAX_JSON_DEPTH})


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in a JSON text, brackets inside strings not counted.
    Linear: two regex passes and a running sum, all in C, however the text is made."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads(s: str | bytes, **kwargs):
    """`json.loads` that raises JSONTooDeep (a 400) past `MAX_JSON_DEPTH` levels; a text that
    is not JSON still raises ValueError, for the caller to answer as it must."""
    if isinstance(s, bytes | bytearray):
        s = s.decode(json.detect_encoding(s), "surrogatepass")
    # Fewer opening brackets than the limit can't nest deeper than it: most bodies stop here.
    if s.count("[") + s.count("{") > MAX_JSON_DEPTH and nesting_depth(s) > MAX_JSON_DEPTH:
        raise JSONTooDeep()
    try:
        return json.loads(s, **kwargs)
    except RecursionError:  # only if MAX_JSON_DEPTH were raised past what the stack allows
        raise JSONTooDeep() from None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the nesting limit above; the default parser of every API view."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            return loads(stream.read().decode(encoding), parse_constant=drf_json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(_("JSON parse error - %(error)s") % {"error": exc})
