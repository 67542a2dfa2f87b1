// Placeholder until the recorder lands.
public enum MetricsModule {}
