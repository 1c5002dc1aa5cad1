"""The OpenAPI 3.1 description of the public parking feed (served at /openapi.json; its schemas are JSON Schema 2020-12)."""

from __future__ import annotations

from typing import Any

from scada.public.ngsi import STATUS_VALUES

API_VERSION = "1.0.0"
PROBLEM_MEDIA = "application/problem+json"

_COUNT_FIELDS = ("availableSpotNumber", "occupiedSpotNumber", "occupancy", "occupancyModified")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _entity(type_name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "allOf": [
            _ref("ParkingBase"),
            {
                "properties": {
                    "type": {"const": type_name},
                    "id": {"type": "string", "pattern": f"^urn:ngsi-ld:{type_name}:[A-Za-z0-9][A-Za-z0-9._-]*$"},
                }
            },
        ],
    }


SCHEMAS: dict[str, Any] = {
    "Point": {
        "type": "object",
        "description": "GeoJSON Point, WGS84 [longitude, latitude]",
        "required": ["type", "coordinates"],
        "additionalProperties": False,
        "properties": {
            "type": {"const": "Point"},
            "coordinates": {
                "type": "array",
                "prefixItems": [
                    {"type": "number", "minimum": -180, "maximum": 180},
                    {"type": "number", "minimum": -90, "maximum": 90},
                ],
                "minItems": 2,
                "maxItems": 2,
            },
        },
    },
    "ParkingBase": {
        "type": "object",
        "description": (
            "Fields shared by OffStreetParking and OnStreetParking (FIWARE Smart Data Models, dataModel.Parking, "
            'NGSI-LD keyValues). When status is ["unknown"] (gateway lost, data not Good, or no data yet), the '
            "live counts are absent: a stale number is never shown."
        ),
        "required": ["id", "type", "name", "location", "address", "totalSpotNumber", "status"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "description": "NGSI-LD URN: urn:ngsi-ld:<type>:<site id>"},
            "type": {"enum": ["OffStreetParking", "OnStreetParking"]},
            "name": {"type": "string", "minLength": 1},
            "location": _ref("Point"),
            "address": {
                "type": "object",
                "required": ["district"],
                "additionalProperties": False,
                "properties": {"district": {"type": "string"}},
            },
            "totalSpotNumber": {"type": "integer", "minimum": 1, "description": "places offered"},
            "availableSpotNumber": {"type": "integer", "minimum": 0, "description": "places known to be free now"},
            "occupiedSpotNumber": {"type": "integer", "minimum": 0, "description": "places occupied now"},
            "occupancy": {"type": "number", "minimum": 0, "maximum": 1, "description": "occupied / total"},
            "occupancyModified": {"type": "string", "format": "date-time", "description": "time of the counts"},
            "status": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"enum": list(STATUS_VALUES)},
                "description": (
                    "DATEX II site status: [open, spacesAvailable], [open, almostFull] (at most 10 % free), "
                    "[full], [closed], or [unknown] (application-specific: no trustworthy live data)"
                ),
            },
            "dateModified": {"type": "string", "format": "date-time", "description": "last change of the site"},
        },
        "if": {"properties": {"status": {"contains": {"const": "unknown"}}}, "required": ["status"]},
        "then": {"not": {"anyOf": [{"required": [name]} for name in _COUNT_FIELDS]}},
        "else": {"required": ["availableSpotNumber", "occupiedSpotNumber", "occupancy"]},
    },
    "OffStreetParking": _entity("OffStreetParking", "A car park (FIWARE OffStreetParking)"),
    "OnStreetParking": _entity("OnStreetParking", "An on-street parking zone (FIWARE OnStreetParking)"),
    "Parking": {
        "oneOf": [_ref("OffStreetParking"), _ref("OnStreetParking")],
        "discriminator": {
            "propertyName": "type",
            "mapping": {
                "OffStreetParking": "#/components/schemas/OffStreetParking",
                "OnStreetParking": "#/components/schemas/OnStreetParking",
            },
        },
    },
    "ParkingList": {"type": "array", "items": _ref("Parking")},
    "Health": {
        "type": "object",
        "required": ["status", "sites", "sitesWithLiveData"],
        "additionalProperties": False,
        "properties": {
            "status": {"const": "ok"},
            "sites": {"type": "integer", "minimum": 0},
            "sitesWithLiveData": {"type": "integer", "minimum": 0},
        },
    },
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
        },
    },
}

_CACHE_HEADERS = {
    "ETag": {"description": "strong validator of the representation", "schema": {"type": "string"}},
    "Cache-Control": {"description": "public, max-age of a few seconds", "schema": {"type": "string"}},
    "Last-Modified": {
        "description": "time of the last change (sent once that second is over)",
        "schema": {"type": "string"},
    },
}


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {PROBLEM_MEDIA: {"schema": _ref("Problem")}}}
    if headers:
        response["headers"] = headers
    return response


_RATE_LIMITED = _problem(
    "too many requests from this address",
    {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
)
_NOT_MODIFIED = {"description": "not modified (If-None-Match / If-Modified-Since)", "headers": _CACHE_HEADERS}
_CONDITIONAL = [
    {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
    {"name": "If-Modified-Since", "in": "header", "required": False, "schema": {"type": "string"}},
]


def _json(schema: dict[str, Any], description: str, cached: bool = True) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if cached:
        response["headers"] = _CACHE_HEADERS
    return response


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API."""
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "cityscada public parking feed",
            "version": API_VERSION,
            "description": (
                "Read-only live availability of the city's car parks and on-street parking zones, as FIWARE Smart "
                "Data Models entities (OffStreetParking, OnStreetParking) in NGSI-LD keyValues form. No personal "
                "or operator data. Responses are cacheable for a few seconds (ETag, Last-Modified), gzip on "
                "request, CORS open for GET; each client address is rate limited (429 with Retry-After)."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": {
            "/v1/parking": {
                "get": {
                    "operationId": "listParking",
                    "summary": "every car park and on-street zone with its live availability",
                    "parameters": [
                        {
                            "name": "type",
                            "in": "query",
                            "required": False,
                            "schema": {"enum": ["OffStreetParking", "OnStreetParking"]},
                            "description": "only entities of this type",
                        },
                        *_CONDITIONAL,
                    ],
                    "responses": {
                        "200": _json(_ref("ParkingList"), "the sites, in a stable order"),
                        "304": _NOT_MODIFIED,
                        "400": _problem("invalid query parameter"),
                        "429": _RATE_LIMITED,
                    },
                }
            },
            "/v1/parking/{id}": {
                "get": {
                    "operationId": "getParking",
                    "summary": "one site by id (the site id, e.g. PK-01, or the entity URN)",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                        *_CONDITIONAL,
                    ],
                    "responses": {
                        "200": _json(_ref("Parking"), "the site"),
                        "304": _NOT_MODIFIED,
                        "404": _problem("no such site"),
                        "429": _RATE_LIMITED,
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "this description",
                    "responses": {
                        "200": _json({"type": "object"}, "the OpenAPI 3.1 document"),
                        "304": _NOT_MODIFIED,
                        "429": _RATE_LIMITED,
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "liveness of the feed",
                    "responses": {
                        "200": _json(_ref("Health"), "the feed is serving", cached=False),
                        "429": _RATE_LIMITED,
                    },
                }
            },
        },
        "components": {"schemas": SCHEMAS},
    }
