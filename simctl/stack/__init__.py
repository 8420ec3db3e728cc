"""The stack definition: stack/compose.yaml and stack/toxiproxy.json, read for any backend."""
