"""The metering agent: collectors (containers, proxy logs, storage, health), the agent loop,
usage-event import and alerts, all writing into the DuckDB store."""
