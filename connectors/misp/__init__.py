"""MISP import: MISP events (files or a MISP's REST API) as STIX 2.1 under the hub's TLP.

`convert_event` turns one event into marked STIX objects with misp-stix (imported only when
converting: it is heavy); `sharing` holds the TLP and distribution mapping (mapping.json);
`sources` reads files and the REST API; `commands` is `cirt-hub misp import`.
"""

from connectors.misp.conversion import Conversion, ConversionError, convert_event, merged
from connectors.misp.sharing import MispFormatError, NotShared
from connectors.misp.sources import MispApi, MispEvent, MispSourceError, events_in, read_file

__all__ = [
    "Conversion",
    "ConversionError",
    "MispApi",
    "MispEvent",
    "MispFormatError",
    "MispSourceError",
    "NotShared",
    "convert_event",
    "events_in",
    "merged",
    "read_file",
]
