"""Quality dimensions: per-record scores, aggregation and filtering."""
