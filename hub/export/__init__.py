"""Exports for analysts' tools: a collection's current indicators and observables as a
blocklist (txt), a table (csv), Suricata rules, or one STIX bundle.

`values` decides what an object contributes (through the correlator's own observable
extraction), `selection` which objects are current and wanted, `formats` and `suricata`
how each format writes them; hub/api/exports.py serves them over the TAXII read path.
"""
