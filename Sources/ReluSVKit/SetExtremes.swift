/// Column-wise extremes over many sets of rows (MATH.md §11).
///
/// A set functional of the two-group comparison is `f(A) = reduce(max_A V,
/// min_A V)`: for the GMW, `V` holds the points' products with the Gaussian
/// directions (one column per direction) and `f(A)` is the trimmed mean of
/// `max_A - min_A` over the columns; for `s_0`, one column of per-point
/// values and `f(A)` its maximum. The permutation test evaluates `f` on
/// thousands of relabelled sets, so the extremes are the comparison's whole
/// cost; this kernel computes them for `count` sets at once:
///
///     hi[i, j] = max_{r in set i} V[r, j],   lo[i, j] = min_{r in set i} V[r, j],
///
/// with NaN propagating as in NumPy's `maximum` / `minimum` (a NaN member
/// makes the column's extremes NaN). One thread; per set, eight columns at a
/// time stay in registers while the members' rows stream past.
///
/// - Parameters:
///   - values: `V` (`rows x columns`, float64, any row stride).
///   - sets: `count * setSize` row indices, set by set, each in `0 ..< rows`
///     (checked by the caller, `checkSetIndices`); `setSize >= 1`.
///   - hi, lo: `count * columns` values each, set by set; `lo` may be nil
///     (maxima only).
///   - progress: advanced by sets done, every 256 sets (cancellation point).
public func setExtremes(
    of values: MatrixView<Double>, sets: UnsafePointer<Int64>, count: Int, setSize: Int,
    hi: UnsafeMutablePointer<Double>, lo: UnsafeMutablePointer<Double>?, progress: Progress = .silent
) throws {
    let columns = values.columns
    guard columns > 0, count > 0 else { return }
    precondition(setSize > 0, "a set has at least one member")
    try MemoryBudget.require(bytes: Double(setSize) * 8, for: "the member rows of a set of \(setSize)")
    let rows = UnsafeMutablePointer<UnsafePointer<Double>>.allocate(capacity: setSize)
    defer { rows.deallocate() }
    for i in 0..<count {
        if i % 256 == 0 { try progress.advance(to: i) }
        for m in 0..<setSize { rows[m] = values.row(Int(sets[i * setSize + m])) }
        columnExtremes(
            rows: rows, count: setSize, columns: columns, hi: hi + i * columns, lo: lo.map { $0 + i * columns })
    }
    try progress.advance(to: count)
}

/// The extremes of one set: `rows[0 ..< count]` point at its members' rows.
@inline(__always)
private func columnExtremes(
    rows: UnsafePointer<UnsafePointer<Double>>, count: Int, columns: Int,
    hi: UnsafeMutablePointer<Double>, lo: UnsafeMutablePointer<Double>?
) {
    typealias Lanes = SIMD8<Double>
    var j = 0
    while j + Lanes.scalarCount <= columns {
        var top = UnsafeRawPointer(rows[0] + j).loadUnaligned(as: Lanes.self)
        var bottom = top
        var nan = top .!= top
        for m in 1..<count {
            let x = UnsafeRawPointer(rows[m] + j).loadUnaligned(as: Lanes.self)
            top.replace(with: x, where: top .< x)
            bottom.replace(with: x, where: bottom .> x)
            nan .|= x .!= x
        }
        top.replace(with: .nan, where: nan)
        bottom.replace(with: .nan, where: nan)
        UnsafeMutableRawPointer(hi + j).storeBytes(of: top, as: Lanes.self)
        if let lo { UnsafeMutableRawPointer(lo + j).storeBytes(of: bottom, as: Lanes.self) }
        j += Lanes.scalarCount
    }
    for c in j..<columns {
        var top = rows[0][c]
        var bottom = top
        var nan = top.isNaN
        for m in 1..<count {
            let x = rows[m][c]
            top = top < x ? x : top
            bottom = bottom > x ? x : bottom
            nan = nan || x.isNaN
        }
        hi[c] = nan ? .nan : top
        lo?[c] = nan ? .nan : bottom
    }
}

/// Checks that every one of the `count` sets of `setSize` indices names a
/// row in `0 ..< rows`; throws `invalidArgument` naming the first that does not.
public func checkSetIndices(_ sets: UnsafePointer<Int64>, count: Int, setSize: Int, rows: Int) throws {
    for i in 0..<(count * setSize) where sets[i] < 0 || sets[i] >= Int64(rows) {
        throw EngineError.invalidArgument(
            "sets[\(i / setSize)][\(i % setSize)] = \(sets[i]) is not a row index in [0, \(rows))")
    }
}
