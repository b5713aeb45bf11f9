"""Signed provenance: the hub's keys (`keyring`), detached JWS (`jws`), the provenance
extension and the hub signer (`provenance`), member signatures (`members`), offline
verification (`verify`), and the CLI commands over them (`commands`, `sources`)."""
