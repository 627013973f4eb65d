"""Full aggregation: connectors, validation, quarantine, snapshots, quality and lineage."""
