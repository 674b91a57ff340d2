/// The exact diameter `max_{i,j} ||x_i - x_j||` of a finite set (rows are points).
///
/// Squared distances come from blocked Gram products
/// `||a||^2 + ||b||^2 - 2 <a, b>` of rows centred at the first point (one GEMM
/// per pair of blocks, `O(N^2 n)` work, `O(block^2 + block * n)` extra
/// memory); the winning pair is then re-measured directly in `Double`, so the
/// result is a true distance between two points of the set.
///
/// At every scale: the centred rows are multiplied by a power of two that
/// brings the largest entry near 1 (exact, so the ranking is that of the
/// data), and the re-measure scales its sum of squares (`RowExtremes.norm`):
/// distinct points down to the smallest normal numbers have a nonzero
/// diameter, and huge ones a finite diameter while it is representable.
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func diameter<Scalar: BLASScalar>(
    of x: MatrixView<Scalar>, blockRows: Int = 512, progress: Progress = .silent
) throws -> Double {
    guard x.rows > 0 else { throw EngineError.empty("x has no rows: the diameter of an empty set is undefined") }
    guard x.rows > 1 else { return 0 }
    let n = x.columns
    let b = min(blockRows, x.rows)
    let blocks = (x.rows + b - 1) / b
    let reference = x.row(0)
    let scale = Scalar(diameterScale(x))

    /// Copies rows `range` minus the reference point, times `scale`, into `dst`, returning squared norms.
    func centred(_ range: Range<Int>, into dst: UnsafeMutablePointer<Scalar>) throws -> [Scalar] {
        var norms = [Scalar](repeating: 0, count: range.count)
        for (k, i) in range.enumerated() {
            let src = x.row(i)
            let row = dst + k * n
            var s: Scalar = 0
            for c in 0..<n {
                let v = src[c] * scale - reference[c] * scale
                row[c] = v
                s += v * v
            }
            guard s.isFinite else {
                for c in 0..<n where !src[c].isFinite { throw EngineError.nonFiniteData(row: i, column: c) }
                throw EngineError.overflow("a squared distance exceeds the range of \(Scalar.self)")
            }
            norms[k] = s
        }
        return norms
    }

    var best: (Scalar, Int, Int) = (-1, 0, 0)
    let left = try ScratchBuffer<Scalar>(count: b * n, purpose: "\(b) x \(n) centred points")
    let right = try ScratchBuffer<Scalar>(count: b * n, purpose: "\(b) x \(n) centred points")
    let gram = try ScratchBuffer<Scalar>(count: b * b, purpose: "\(b) x \(b) Gram block")
    var done = 0
    for bi in 0..<blocks {
        let ri = (bi * b)..<min(x.rows, (bi + 1) * b)
        let ni = try centred(ri, into: left.pointer)
        for bj in bi..<blocks {
            let rj = (bj * b)..<min(x.rows, (bj + 1) * b)
            let nj = try centred(rj, into: right.pointer)
            Scalar.gemm(
                transA: false, transB: true, m: ri.count, n: rj.count, k: n,
                alpha: 1, a: left.pointer, lda: n, b: right.pointer, ldb: n,
                beta: 0, c: gram.pointer, ldc: rj.count)
            for p in 0..<ri.count {
                for q in 0..<rj.count {
                    let d = ni[p] + nj[q] - 2 * gram.pointer[p * rj.count + q]
                    if d > best.0 { best = (d, ri.lowerBound + p, rj.lowerBound + q) }
                }
            }
            done += 1
            try progress.advance(to: done)
        }
    }
    let a = x.row(best.1)
    let c = x.row(best.2)
    let differences = (0..<n).map { Double(a[$0]) - Double(c[$0]) }
    let distance = differences.withUnsafeBufferPointer { RowExtremes.norm($0.baseAddress!, count: n) }
    guard distance.isFinite else { throw EngineError.overflow("the diameter exceeds the range of Double") }
    return distance
}

/// The power of two that brings the largest `|x_ij|` to `[1, 2)`, limited to
/// the exponents `Scalar` can hold (1 for a zero matrix); finite entries are
/// checked later, by position.
private func diameterScale<Scalar: BLASScalar>(_ x: MatrixView<Scalar>) -> Double {
    var largest = 0.0
    for i in 0..<x.rows {
        let r = x.row(i)
        for j in 0..<x.columns where r[j].isFinite { largest = max(largest, abs(Double(r[j]))) }
    }
    guard largest > 0 else { return 1 }
    let limit = Int(Scalar.greatestFiniteMagnitude.exponent) - 2
    return Double(sign: .plus, exponent: max(-limit, min(limit, -Int(largest.exponent))), significand: 1)
}

/// Number of progress units `diameter(of:)` reports for `rows` points.
public func diameterProgressUnits(rows: Int, blockRows: Int = 512) -> Int {
    let blocks = (rows + blockRows - 1) / max(blockRows, 1)
    return blocks * (blocks + 1) / 2
}
