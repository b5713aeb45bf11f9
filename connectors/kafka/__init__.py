"""Kafka for member CIRTs that run their own clients: produce signed bundles to the member's
intake topic, consume its feed and verify the hub's signatures (`connectors.kafka.member`)."""
