/// The exact diameter `max_{i,j} ||x_i - x_j||` of a finite set (rows are points).
///
/// Squared distances come from blocked Gram products
/// `||a||^2 + ||b||^2 - 2 <a, b>` of rows centred at the first point (one GEMM
/// per pair of blocks, `O(N^2 n)` work, `O(block^2 + block * n)` extra
/// memory); the winning pair is then re-measured directly in `Double`, so the
/// result is a true distance between two points of the set.
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

    /// Copies rows `range` minus the reference point into `dst`, returning squared norms.
    func centred(_ range: Range<Int>, into dst: UnsafeMutablePointer<Scalar>) throws -> [Scalar] {
        var norms = [Scalar](repeating: 0, count: range.count)
        for (k, i) in range.enumerated() {
            let src = x.row(i)
            let row = dst + k * n
            var s: Scalar = 0
            for c in 0..<n {
                let v = src[c] - reference[c]
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
    var s = 0.0
    for k in 0..<n {
        let d = Double(a[k]) - Double(c[k])
        s += d * d
    }
    return s.squareRoot()
}

/// Number of progress units `diameter(of:)` reports for `rows` points.
public func diameterProgressUnits(rows: Int, blockRows: Int = 512) -> Int {
    let blocks = (rows + blockRows - 1) / max(blockRows, 1)
    return blocks * (blocks + 1) / 2
}
