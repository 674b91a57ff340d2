/// Location and spread of a Monte-Carlo sample, as the width estimators report them.
///
/// The trimmed mean drops `floor(trim * S)` values at each end of the sorted
/// sample and averages the rest, exactly as SciPy's `trim_mean(a, trim)`.
/// Its standard error is the Tukey–McLaughlin estimate
/// `s_w / ((1 - 2 g / S) sqrt(S))`, with `s_w` the standard deviation
/// (`ddof = 1`) of the sample winsorised at the same `g` values per end; for
/// `trim = 0` this is the usual `s / sqrt(S)`.
///
/// Sums are taken of values divided by a power of two near their largest
/// magnitude (`scaledMean`, `standardDeviation`), which changes no rounding but keeps every
/// partial sum in range: a mean or deviation that is representable is
/// returned even when `sum(v)` or `sum(v^2)` would overflow. A value that is
/// not representable (the sample itself non-finite, or a standard error
/// above the largest `Double`) throws `EngineError.overflow`.
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

    /// The rule for `trim`, checked by every estimator before it starts.
    public static func checkTrim(_ trim: Double) throws {
        guard trim >= 0, trim < 0.5 else {  // NaN fails too
            throw EngineError.invalidArgument("trim must lie in [0, 0.5), got \(trim)")
        }
    }

    /// Summarises `values` with `trim` in `[0, 0.5)` cut at each end.
    public init(_ values: [Double], trim: Double) throws {
        try Self.checkTrim(trim)
        guard !values.isEmpty else { throw EngineError.invalidArgument("no samples to summarise") }
        guard values.allSatisfy(\.isFinite) else {
            throw EngineError.overflow("a per-direction width is not finite; rescale the data")
        }
        let n = values.count
        let sorted = values.sorted()
        let cut = Int(trim * Double(n))  // truncation, as int() in SciPy
        let kept = sorted[cut..<(n - cut)]
        // Both means sum the sorted values, so that trim = 0 gives estimate == mean exactly.
        let mean = Self.scaledMean(sorted[...])
        count = n
        self.mean = mean
        estimate = Self.scaledMean(kept)
        meanStandardError = n > 1 ? Self.standardDeviation(sorted, mean: mean) / Double(n).squareRoot() : 0
        if n > 1 {
            let low = sorted[cut]
            let high = sorted[n - 1 - cut]
            let winsorised = sorted.map { Swift.min(Swift.max($0, low), high) }
            let wMean = Self.scaledMean(winsorised[...])
            let sw = Self.standardDeviation(winsorised, mean: wMean)
            standardError = sw / ((1 - 2 * Double(cut) / Double(n)) * Double(n).squareRoot())
        } else {
            standardError = 0
        }
        guard estimate.isFinite, self.mean.isFinite, standardError.isFinite, meanStandardError.isFinite else {
            throw EngineError.overflow(
                "the standard error of the per-direction widths exceeds the range of Double; rescale the data")
        }
    }

    /// `sum(v) / count`, with every value divided by `2^e` (the power of two
    /// at or below `max |v|`, so every quotient is below 2 in magnitude) before the sum and the mean multiplied back: the same
    /// roundings as the plain formula while it stays in range, and no overflow.
    private static func scaledMean(_ v: ArraySlice<Double>) -> Double {
        let largest = v.reduce(0.0) { Swift.max($0, abs($1)) }
        guard largest > 0 else { return 0 }
        let scale = Double(sign: .plus, exponent: largest.exponent, significand: 1)
        return v.reduce(0) { $0 + $1 / scale } / Double(v.count) * scale
    }

    /// `sqrt(sum (v - mean)^2 / (S - 1))`, scaled as in `scaledMean` so that squares do not overflow.
    private static func standardDeviation(_ v: [Double], mean: Double) -> Double {
        let deviations = v.map { $0 - mean }
        let largest = deviations.reduce(0.0) { Swift.max($0, abs($1)) }
        guard largest > 0, largest.isFinite else { return largest.isFinite ? 0 : .infinity }
        let scale = Double(sign: .plus, exponent: largest.exponent, significand: 1)
        let sum = deviations.reduce(0) { $0 + ($1 / scale) * ($1 / scale) }
        return (sum / Double(v.count - 1)).squareRoot() * scale
    }
}
