"""Kafka's DescribeLogDirs (API key 35): bytes per partition in each log dir of a broker, and
(version 4, Kafka 3.3 and later, KIP-827) each log dir's total and usable bytes.

aiokafka 0.14's admin client has no describe_log_dirs, so the request is declared here with
aiokafka's own protocol types (its Request picks the highest version both sides speak: 1
or 4) and sent through the admin client's connection to each broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Array,
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    String,
    TaggedFields,
)

API_KEY = 35


# aiokafka names its protocol classes Name_vN.
class DescribeLogDirsResponse_v1(Response):
    API_KEY = API_KEY
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            Array(
                ("error_code", Int16),
                ("log_dir", String("utf-8")),
                (
                    "topics",
                    Array(
                        ("name", String("utf-8")),
                        (
                            "partitions",
                            Array(
                                ("partition_index", Int32),
                                ("partition_size", Int64),
                                ("offset_lag", Int64),
                                ("is_future_key", Boolean),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )


class DescribeLogDirsResponse_v4(Response):
    API_KEY = API_KEY
    API_VERSION = 4
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        (
            "results",
            CompactArray(
                ("error_code", Int16),
                ("log_dir", CompactString("utf-8")),
                (
                    "topics",
                    CompactArray(
                        ("name", CompactString("utf-8")),
                        (
                            "partitions",
                            CompactArray(
                                ("partition_index", Int32),
                                ("partition_size", Int64),
                                ("offset_lag", Int64),
                                ("is_future_key", Boolean),
                                ("tags", TaggedFields),
                            ),
                        ),
                        ("tags", TaggedFields),
                    ),
                ),
                ("total_bytes", Int64),
                ("usable_bytes", Int64),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class DescribeLogDirsRequest_v1(RequestStruct):
    API_KEY = API_KEY
    API_VERSION = 1
    RESPONSE_TYPE = DescribeLogDirsResponse_v1
    SCHEMA = Schema(("topics", Array(("topic", String("utf-8")), ("partitions", Array(Int32)))))


class DescribeLogDirsRequest_v4(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = API_KEY
    API_VERSION = 4
    RESPONSE_TYPE = DescribeLogDirsResponse_v4
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(
                ("topic", CompactString("utf-8")),
                ("partitions", CompactArray(Int32)),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


_Structs: TypeAlias = DescribeLogDirsRequest_v1 | DescribeLogDirsRequest_v4


class DescribeLogDirsRequest(Request[_Structs]):
    API_KEY = API_KEY

    def __init__(self, partitions: dict[str, list[int]]) -> None:
        self._partitions = partitions

    def build(self, request_struct_class: type[_Structs]) -> _Structs:
        if request_struct_class.FLEXIBLE_VERSION:
            topics: list[Any] = [(t, p, {}) for t, p in sorted(self._partitions.items())]
            return request_struct_class(topics, {})
        return request_struct_class(sorted(self._partitions.items()))


@dataclass(frozen=True)
class LogDir:
    """One log dir of one broker: bytes of the asked topics in it, and its space (None
    from a broker older than Kafka 3.3, or one that cannot tell)."""

    broker: int
    path: str
    topics: dict[str, int] = field(default_factory=dict)
    total_bytes: int | None = None
    usable_bytes: int | None = None


async def describe_log_dirs(
    admin: AIOKafkaAdminClient, partitions: dict[str, list[int]]
) -> list[LogDir]:
    """Every broker's log dirs, with the bytes of `partitions` (topic -> partition numbers)
    each holds: every replica, and a replica being moved between dirs, takes disk."""
    cluster = await admin.describe_cluster()
    found = []
    for broker in sorted(b["node_id"] for b in cluster["brokers"]):
        # The one private call: aiokafka sends a request to a chosen broker only this way.
        response = await admin._send_request_to_node(broker, DescribeLogDirsRequest(partitions))
        answer = response.to_object()
        if answer.get("error_code"):
            raise for_code(answer["error_code"])(f"DescribeLogDirs on broker {broker}")
        for result in answer["results"]:
            if result["error_code"]:
                continue  # an offline log dir holds nothing readable: it is not counted
            sizes: dict[str, int] = {}
            for topic in result["topics"]:
                size = sum(p["partition_size"] for p in topic["partitions"])
                sizes[topic["name"]] = sizes.get(topic["name"], 0) + size
            total, usable = result.get("total_bytes", -1), result.get("usable_bytes", -1)
            found.append(
                LogDir(
                    broker,
                    result["log_dir"],
                    sizes,
                    total if total >= 0 else None,
                    usable if usable >= 0 else None,
                )
            )
    return found
