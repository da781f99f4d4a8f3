"""Carrier connectors: return labels bought on a carrier platform, and its tracking webhooks
read as canonical tracking events. One class per platform API; codes live in its mappings."""
