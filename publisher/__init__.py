"""The daemon and its broker side: payloads, the MQTT session, publishing, receipts and report ingestion."""

__all__: list[str] = []
