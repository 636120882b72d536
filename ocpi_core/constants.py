"""OCPI status codes, module identifiers, roles and versions, spelled exactly as in the spec (REFERENCE §1, §3, §4)."""

from enum import IntEnum

from django.db import models

OCPI_VERSION = "2.2.1"
# X-Request-ID / X-Correlation-ID: the spec sets no length and wants each echoed as sent; longer (or not printable
# ASCII) ones are replaced by a UUID. Also the traffic log's column width.
MESSAGE_ID_MAX = 255


class StatusCode(IntEnum):
    """The four-digit `status_code` of the response envelope (REFERENCE §3)."""

    SUCCESS = 1000
    CLIENT_ERROR = 2000
    INVALID_PARAMETERS = 2001
    NOT_ENOUGH_INFORMATION = 2002
    UNKNOWN_LOCATION = 2003
    UNKNOWN_TOKEN = 2004
    SERVER_ERROR = 3000
    UNABLE_TO_USE_CLIENT_API = 3001
    UNSUPPORTED_VERSION = 3002
    NO_MATCHING_ENDPOINTS = 3003
    HUB_ERROR = 4000
    HUB_UNKNOWN_RECEIVER = 4001
    HUB_TIMEOUT = 4002
    HUB_CONNECTION_PROBLEM = 4003


class ModuleID(models.TextChoices):
    """Module identifiers used in version details."""

    CDRS = "cdrs"
    CHARGINGPROFILES = "chargingprofiles"
    COMMANDS = "commands"
    CREDENTIALS = "credentials"
    HUBCLIENTINFO = "hubclientinfo"
    LOCATIONS = "locations"
    SESSIONS = "sessions"
    TARIFFS = "tariffs"
    TOKENS = "tokens"


class InterfaceRole(models.TextChoices):
    """Which side of a module an endpoint implements."""

    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class Role(models.TextChoices):
    """Market role of a party."""

    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


class VersionNumber(models.TextChoices):
    """OCPI versions a partner may announce."""

    V2_0 = "2.0"
    V2_1 = "2.1"
    V2_1_1 = "2.1.1"
    V2_2 = "2.2"
    V2_2_1 = "2.2.1"


# Configuration modules never carry the OCPI-to/from routing headers (REFERENCE §2.2).
CONFIGURATION_MODULES = frozenset({ModuleID.CREDENTIALS, ModuleID.HUBCLIENTINFO, "versions"})
