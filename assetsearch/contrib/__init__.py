"""Optional integrations with other frameworks; each imports its framework only in its own subpackage."""
