"""ERP connectors: one class per ERP API, the rest (codes, fields) is each profile's mappings."""
