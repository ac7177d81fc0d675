"""The prediction log: the writer a serving process keeps, its Parquet files,
reading, compaction, and tracing one request back to everything behind it."""
