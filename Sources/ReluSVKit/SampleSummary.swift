/// Location and spread of a Monte-Carlo sample, as the width estimators report them.
///
/// The trimmed mean drops `floor(trim * S)` values at each end of the sorted
/// sample and averages the rest, exactly as SciPy's `trim_mean(a, trim)`.
/// Its standard error is the Tukey–McLaughlin estimate
/// `s_w / ((1 - 2 g / S) sqrt(S))`, with `s_w` the standard deviation
/// (`ddof = 1`) of the sample winsorised at the same `g` values per end; for
/// `trim = 0` this is the usual `s / sqrt(S)`.
public struct SampleSummary: Equatable, Sendable {
    /// The trimmed mean (the estimate for the chosen trim).
    public var estimate: Double
    /// Standard error of `estimate`.
    public var standardError: Double
    /// The plain mean of all values.
    public var mean: Double
    /// Standard error of `mean` (`s / sqrt(S)`).
    public var meanStandardError: Double
    /// Number of values.
    public var count: Int

    /// Summarises `values` with `trim` in `[0, 0.5)` cut at each end.
    public init(_ values: [Double], trim: Double) throws {
        guard trim >= 0, trim < 0.5 else {
            throw EngineError.invalidArgument("trim must lie in [0, 0.5), got \(trim)")
        }
        guard !values.isEmpty else { throw EngineError.invalidArgument("no samples to summarise") }
        let n = values.count
        let sorted = values.sorted()
        let cut = Int(trim * Double(n))  // truncation, as int() in SciPy
        let kept = sorted[cut..<(n - cut)]
        // Both means sum the sorted values, so that trim = 0 gives estimate == mean exactly.
        let mean = sorted.reduce(0, +) / Double(n)
        count = n
        self.mean = mean
        estimate = kept.reduce(0, +) / Double(kept.count)
        meanStandardError = n > 1 ? Self.standardDeviation(sorted, mean: mean) / Double(n).squareRoot() : 0
        if n > 1 {
            let low = sorted[cut], high = sorted[n - 1 - cut]
            let winsorised = sorted.map { Swift.min(Swift.max($0, low), high) }
            let wMean = winsorised.reduce(0, +) / Double(n)
            let sw = Self.standardDeviation(winsorised, mean: wMean)
            standardError = sw / ((1 - 2 * Double(cut) / Double(n)) * Double(n).squareRoot())
        } else {
            standardError = 0
        }
    }

    private static func standardDeviation(_ v: [Double], mean: Double) -> Double {
        (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)).squareRoot()
    }
}
