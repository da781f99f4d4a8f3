"""WMS connectors: expected receipts (ASNs) out, receipts and inspection results back by webhook."""
