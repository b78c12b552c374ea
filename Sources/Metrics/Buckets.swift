/// Standard histogram bucket upper bounds.
public enum Buckets {
  /// Upper bounds in seconds for waits and latencies from 1 ms to 60 s.
  public static let waitSeconds: [Double] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
  ]
}
