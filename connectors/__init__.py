"""What brings data into the hub or takes it out: the CIRT client SDK and CLI, MISP import,
TAXII pull/push between hubs, Kafka producers. Planned in the connectors issue; empty so far."""
