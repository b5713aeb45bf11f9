"""cirt-hub: signed, rule-bound sharing of STIX 2.1 incident reports between national CIRTs."""
