"""Hub-to-hub federation: pull a peer hub's collections over TAXII and submit them here, as
the peer's member account, with the peer's signature kept in the provenance chain."""
