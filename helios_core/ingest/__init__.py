"""The ingestion engine: Kinesis → validated, exactly-once batches in ClickHouse (+ quarantine).

``manager.get_ingest_manager()`` runs one consumer per running source in this
process; ``python -m helios_core.ingest`` runs the same thing headless.
"""
