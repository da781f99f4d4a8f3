"""CRM connectors: keep the customer's service case in step with the return, one class per CRM API."""
