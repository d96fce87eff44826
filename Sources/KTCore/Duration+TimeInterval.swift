extension Duration {
    /// The duration in seconds, fractions included, for APIs that take a `TimeInterval`
    /// (URLSession timeouts) or compute with seconds (backoff). For the SDK's own modules.
    package var timeInterval: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
